"""Anthropic error bodies: rendered for clients, read back from the upstream."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.canonical import (
    ErrorKind,
    GatewayError,
    client_status_for_upstream,
    upstream_kind_for_status,
)
from relaygate.dialects.anthropic._tables import _SECRET, ERROR_TYPE_FOR_KIND, KIND_FOR_ERROR_TYPE


def _redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def _error_type(err: GatewayError) -> str:
    # A provider refusing *our* key is not the client's auth problem (Claude Code would ask
    # its user to log in again): report it as a server-side error.
    if err.upstream_status is not None and err.kind in (
        ErrorKind.AUTHENTICATION,
        ErrorKind.PERMISSION,
    ):
        return "api_error"
    return ERROR_TYPE_FOR_KIND.get(err.kind, "api_error")


def _error_body(err: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _error_type(err), "message": err.message}}


def render_error(err: GatewayError) -> bytes:
    """``{"type": "error", "error": {"type", "message"}}``; the HTTP status is ``err.status``."""
    return orjson.dumps(_error_body(err))


def _error_from_object(obj: dict[str, Any], status: int | None) -> GatewayError:
    err = obj.get("error")
    err = err if isinstance(err, dict) else {}
    etype = err.get("type") if isinstance(err.get("type"), str) else None
    message = _redact(str(err.get("message") or etype or "upstream error"))
    if status is not None and status >= 400:
        kind = upstream_kind_for_status(status)
        return GatewayError(
            kind,
            message,
            status=client_status_for_upstream(status),
            code=etype,
            upstream_status=status,
        )
    kind = KIND_FOR_ERROR_TYPE.get(etype or "", ErrorKind.UPSTREAM)
    if kind in (ErrorKind.AUTHENTICATION, ErrorKind.PERMISSION):
        return GatewayError(kind, message, status=502, code=etype, upstream_status=status)
    return GatewayError(kind, message, code=etype, upstream_status=status)


def parse_error(status: int, body: bytes) -> GatewayError:
    """An upstream error response → :class:`GatewayError` (the caller adds ``retry_after``)."""
    obj: Any = None
    try:
        obj = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        return _error_from_object(obj, status)
    text = body.decode("utf-8", "replace").strip()[:500] if body else ""
    message = _redact(text) if text else f"upstream returned HTTP {status}"
    return GatewayError(
        upstream_kind_for_status(status),
        message,
        status=client_status_for_upstream(status),
        upstream_status=status,
    )
