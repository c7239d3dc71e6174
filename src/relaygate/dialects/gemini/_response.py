"""Gemini non-streaming responses: rendered for clients, read back from the upstream."""

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
    ToolCallPart,
    Usage,
)
from relaygate.dialects.gemini._errors import _error_from_obj
from relaygate.dialects.gemini._parts import _Ids, _parse_parts, _render_parts
from relaygate.dialects.gemini._shared import _dict, _list, _stop, _usage, _usage_metadata
from relaygate.dialects.gemini._tables import _CANDIDATE_KEYS, _RESPONSE_KEYS, STOP_TO_FINISH

log = logging.getLogger(__name__)


def _parse_response(body: dict[str, Any]) -> Response:
    error = body.get("error")
    if isinstance(error, dict):
        raise _error_from_obj(None, error)
    candidates = _list(body.get("candidates") or [], "candidates")
    content: list[ContentPart] = []
    finish: Any = None
    gemini: dict[str, Any] = {}
    if candidates:
        candidate = _dict(candidates[0], "candidates[0]")
        raw = candidate.get("content")
        if raw is not None:
            parts = _dict(raw, "candidates[0].content").get("parts") or []
            content = _parse_parts(
                _list(parts, "candidates[0].content.parts"), "candidates[0].content.parts", _Ids()
            )
        finish = candidate.get("finishReason")
        extra = {k: v for k, v in candidate.items() if k not in _CANDIDATE_KEYS}
        if extra:
            gemini["candidate"] = extra
        if len(candidates) > 1:  # candidateCount > 1: canonical holds one answer, keep the rest raw
            gemini["candidates"] = candidates[1:]
    for key, value in body.items():
        if key not in _RESPONSE_KEYS:
            gemini[key] = value
    feedback = body.get("promptFeedback")
    blocked = isinstance(feedback, dict) and feedback.get("blockReason") is not None
    tool_calls = any(isinstance(p, ToolCallPart) for p in content)
    return Response(
        id=str(body.get("responseId") or ""),
        model=str(body.get("modelVersion") or ""),
        content=content,
        stop_reason=_stop(finish, tool_calls, blocked),
        usage=_usage(body.get("usageMetadata")),
        extras={"gemini": gemini} if gemini else {},
    )


def response_usage(body: dict[str, Any]) -> Usage:
    """What the same-dialect relay needs of a response: an error body (even under a 200)
    raises, as in :func:`parse_response`; otherwise its usage, the content left unparsed."""
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.UPSTREAM, "malformed Gemini response: not an object")
    error = body.get("error")
    if isinstance(error, dict):
        raise _error_from_obj(None, error)
    if not isinstance(body.get("candidates") or [], list):
        raise GatewayError(
            ErrorKind.UPSTREAM, "malformed Gemini response: candidates must be an array"
        )
    return _usage(body.get("usageMetadata"))


def parse_response(body: dict[str, Any]) -> Response:
    """An upstream ``GenerateContentResponse`` → :class:`Response`."""
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.UPSTREAM, "malformed Gemini response: not an object")
    try:
        return _parse_response(body)
    except GatewayError as err:
        if err.kind is not ErrorKind.INVALID_REQUEST or err.upstream_status is not None:
            raise
        raise GatewayError(ErrorKind.UPSTREAM, f"malformed Gemini response: {err.message}") from err


def render_response(response: Response) -> bytes:
    dropped: list[str] = []
    parts = _render_parts(response.content, {}, dropped, upstream=False)
    gemini: dict[str, Any] = response.extras.get("gemini") or {}
    candidate: dict[str, Any] = {
        "content": {"parts": parts, "role": "model"},
        "finishReason": STOP_TO_FINISH[response.stop_reason],
        "index": 0,
    }
    candidate.update(gemini.get("candidate") or {})
    body: dict[str, Any] = {
        "candidates": [candidate, *(gemini.get("candidates") or [])],
        "usageMetadata": _usage_metadata(response.usage),
        "modelVersion": response.model,
        "responseId": response.id,
    }
    for key, value in gemini.items():
        if key not in ("candidate", "candidates"):
            body[key] = value
    if dropped:
        log.debug("gemini: not rendered: %s", ", ".join(dropped))
    return orjson.dumps(body)


def render_models(models: list[ModelInfo]) -> bytes:
    items: list[dict[str, Any]] = []
    for m in models:
        item: dict[str, Any] = {
            "name": f"models/{m.id}",
            "baseModelId": m.id,
            "version": "001",
            "displayName": m.display_name or m.id,
            "description": f"{m.native_id} served by {m.owned_by or m.backend}",
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        if m.context_window is not None:
            item["inputTokenLimit"] = m.context_window
        items.append(item)
    return orjson.dumps({"models": items})
