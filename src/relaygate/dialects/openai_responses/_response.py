"""Responses objects (non-streaming): rendered for clients, read back from the upstream."""

from __future__ import annotations

import logging
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
from relaygate.dialects._common import openai_models
from relaygate.dialects.openai_responses._errors import _error_from
from relaygate.dialects.openai_responses._shared import (
    _encrypted_for,
    _item_id,
    _reasoning_item,
    _thinking,
    _usage_from,
    _usage_to,
)
from relaygate.dialects.openai_responses._tables import INCOMPLETE_FROM_STOP, STOP_FROM_INCOMPLETE

log = logging.getLogger(__name__)


def _output_items(response_id: str, content: list[ContentPart]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    open_msg: dict[str, Any] | None = None
    for part in content:
        if isinstance(part, TextPart):
            if open_msg is None:
                open_msg = {
                    "id": _item_id("msg", response_id, len(items)),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [],
                }
                items.append(open_msg)
            open_msg["content"].append(
                {"type": "output_text", "text": part.text, "annotations": [], "logprobs": []}
            )
            continue
        open_msg = None
        if isinstance(part, ToolCallPart):
            items.append(
                {
                    "id": _item_id("fc", response_id, len(items)),
                    "type": "function_call",
                    "status": "completed",
                    "call_id": part.id,
                    "name": part.name,
                    "arguments": part.arguments,
                }
            )
        elif isinstance(part, ThinkingPart):
            encrypted = _encrypted_for(part.origin, part.signature, part.redacted)
            items.append(
                _reasoning_item(
                    part.id or _item_id("rs", response_id, len(items)), part.text, encrypted
                )
            )
        else:
            log.debug("openai-responses response: dropped %s part", part.type)
    return items


def response_items(response: Response) -> list[dict[str, Any]]:
    """The output items of ``response`` as they go into ``input`` on the next turn (the server
    keeps them for ``previous_response_id``)."""
    return _output_items(response.id, response.content)


def _response_object(
    response_id: str,
    model: str,
    created: int,
    output: list[dict[str, Any]],
    status: str,
    usage: Usage | None,
    incomplete: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    # Echoed request fields carry the defaults; the gateway does not replay the client's values.
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": _usage_to(usage) if usage is not None else None,
        "user": None,
        "metadata": {},
    }


def render_response(response: Response) -> bytes:
    """:class:`Response` → a Response object (what ``POST /v1/responses`` returns)."""
    incomplete = INCOMPLETE_FROM_STOP.get(response.stop_reason)
    return orjson.dumps(
        _response_object(
            response.id,
            response.model,
            response.created,
            _output_items(response.id, response.content),
            "incomplete" if incomplete else "completed",
            response.usage,
            incomplete,
        )
    )


def _check_response(body: Any) -> list[Any]:
    """The output list of a Response object; a failed one raises its error."""
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.UPSTREAM, "malformed upstream response: not an object")
    if body.get("status") == "failed" or ("output" not in body and "error" in body):
        raise _error_from(body.get("error"))
    output = body.get("output")
    if not isinstance(output, list):
        raise GatewayError(ErrorKind.UPSTREAM, "malformed upstream response: no output")
    return output


def response_usage(body: dict[str, Any]) -> Usage:
    """What :func:`parse_response` checks and its usage, without converting the output."""
    _check_response(body)
    return _usage_from(body.get("usage"))


def parse_response(body: dict[str, Any]) -> Response:
    """An upstream Response object → :class:`Response` (a failed one raises its error)."""
    output = _check_response(body)
    content: list[ContentPart] = []
    calls = False
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for c in item.get("content") or []:
                if c.get("type") == "output_text":
                    content.append(TextPart(c.get("text") or ""))
                elif c.get("type") == "refusal":
                    content.append(TextPart(c.get("refusal") or ""))
        elif kind == "function_call":
            calls = True
            content.append(
                ToolCallPart(
                    str(item.get("call_id") or item.get("id") or ""),
                    str(item.get("name") or ""),
                    item.get("arguments") or "",
                )
            )
        elif kind == "reasoning":
            texts = [s.get("text") or "" for s in item.get("summary") or [] if isinstance(s, dict)]
            content.append(
                _thinking("\n\n".join(texts), item.get("encrypted_content") or None, item.get("id"))
            )
        else:
            log.debug("openai-responses response: dropped %s output item", kind)
    stop = StopReason.TOOL_USE if calls else StopReason.END_TURN
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        stop = STOP_FROM_INCOMPLETE.get(str(reason), StopReason.MAX_TOKENS)
    created = body.get("created_at")
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        stop_reason=stop,
        usage=_usage_from(body.get("usage")),
        created=int(created) if isinstance(created, int | float) else 0,
    )


def render_models(models: list[ModelInfo]) -> bytes:
    return openai_models(models)
