"""Anthropic non-streaming responses: rendered for clients, read back from the upstream."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from relaygate.canonical import (
    ContentPart,
    ErrorKind,
    GatewayError,
    ModelInfo,
    Response,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    Usage,
)
from relaygate.dialects._common import json_text
from relaygate.dialects.anthropic._errors import _error_from_object
from relaygate.dialects.anthropic._shared import (
    _tool_input,
    _unwrap_signature,
    _usage_from_wire,
    _usage_to_wire,
    _wrap_signature,
)
from relaygate.dialects.anthropic._tables import FAMILY, STOP_REASON_FROM_WIRE, STOP_REASON_TO_WIRE

log = logging.getLogger(__name__)


def render_count_tokens(n: int) -> bytes:
    return orjson.dumps({"input_tokens": n})


def _response_block(part: ContentPart) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": part.id,
            "name": part.name,
            "input": _tool_input(part.arguments),
        }
    if isinstance(part, ThinkingPart):
        if part.redacted is not None:
            return {
                "type": "redacted_thinking",
                "data": _wrap_signature(part.origin, part.redacted),
            }
        return {
            "type": "thinking",
            "thinking": part.text,
            "signature": _wrap_signature(part.origin, part.signature),
        }
    log.warning("anthropic: dropping %s part from a response", part.type)
    return None


def render_response(response: Response) -> bytes:
    content = [b for b in map(_response_block, response.content) if b is not None]
    return orjson.dumps(
        {
            "id": response.id,
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": content,
            "stop_reason": STOP_REASON_TO_WIRE[response.stop_reason],
            "stop_sequence": response.stop_sequence,
            "usage": _usage_to_wire(response.usage),
        }
    )


def render_models(models: list[ModelInfo]) -> bytes:
    data = [
        {
            "type": "model",
            "id": m.id,
            "display_name": m.display_name or m.id,
            "created_at": datetime.fromtimestamp(m.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lifecycle": "active",
        }
        for m in models
    ]
    return orjson.dumps(
        {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


# =========================================================================== upstream side: parse


def _content_part(block: dict[str, Any]) -> ContentPart | None:
    kind = block.get("type")
    if kind == "text":
        return TextPart(block.get("text") or "")
    if kind == "tool_use":
        return ToolCallPart(
            str(block.get("id", "")),
            str(block.get("name", "")),
            json_text(block.get("input") or {}),
        )
    if kind == "thinking":
        origin, signature = _unwrap_signature(block.get("signature"))
        # Unsigned thinking (some compatible servers) has no family that could verify it.
        return ThinkingPart(text=block.get("thinking") or "", signature=signature, origin=origin)
    if kind == "redacted_thinking":
        origin, data = _unwrap_signature(block.get("data"))
        return ThinkingPart(redacted=data or "", origin=origin or FAMILY)
    log.warning("anthropic: dropping response block of type %r", kind)
    return None


def _check_message(body: Any) -> list[Any]:
    """The content list of a Messages body; an error body (even in a 200) raises."""
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.UPSTREAM, "upstream response is not a JSON object")
    if body.get("type") == "error":
        raise _error_from_object(body, None)
    content = body.get("content")
    if not isinstance(content, list):
        raise GatewayError(ErrorKind.UPSTREAM, "upstream response has no content list")
    return content


def response_usage(body: dict[str, Any]) -> Usage:
    """What :func:`parse_response` checks and its usage, without converting the content."""
    _check_message(body)
    usage = body.get("usage")
    return _usage_from_wire(usage) if isinstance(usage, dict) else Usage()


def parse_response(body: dict[str, Any]) -> Response:
    """An upstream Messages body → :class:`Response`. An error body (even in a 200) raises."""
    content = _check_message(body)
    parts = [p for p in (_content_part(b) for b in content if isinstance(b, dict)) if p is not None]
    usage = body.get("usage")
    return Response(
        id=str(body.get("id", "")),
        model=str(body.get("model", "")),
        content=parts,
        stop_reason=STOP_REASON_FROM_WIRE.get(
            body.get("stop_reason") or "end_turn", StopReason.END_TURN
        ),
        stop_sequence=body.get("stop_sequence"),
        usage=_usage_from_wire(usage) if isinstance(usage, dict) else Usage(),
    )
