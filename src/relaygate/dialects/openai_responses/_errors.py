"""OpenAI Responses error bodies: rendered for clients, read back from the upstream."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.canonical import (
    ErrorKind,
    GatewayError,
    client_status_for_upstream,
    upstream_kind_for_status,
)
from relaygate.dialects.openai_responses._tables import (
    _SECRETS,
    ERROR_CODE_FOR_KIND,
    ERROR_TYPE_FOR_KIND,
    KIND_FOR_ERROR_TYPE,
    KIND_FOR_FAILED_CODE,
)


def _error_from(err: Any, default: ErrorKind = ErrorKind.UPSTREAM) -> GatewayError:
    """A ``response.error`` / ``error`` event / 200-with-error body → :class:`GatewayError`."""
    if not isinstance(err, dict):
        return GatewayError(default, _redact(str(err)) if err else "upstream reported an error")
    code = err.get("code")
    kind = KIND_FOR_FAILED_CODE.get(str(code)) or KIND_FOR_ERROR_TYPE.get(
        str(err.get("type")), default
    )
    param = err.get("param")
    return GatewayError(
        kind,
        _redact(str(err.get("message") or "upstream reported an error")),
        param=param if isinstance(param, str) else None,
        code=str(code) if code is not None else None,
    )


def _redact(message: str) -> str:
    """API keys never travel in messages (OpenAI echoes a masked key on 401)."""
    for pattern, replacement in _SECRETS:
        message = pattern.sub(replacement, message)
    return message


def render_error(err: GatewayError) -> bytes:
    """The OpenAI error body ``{"error": {"message", "type", "param", "code"}}``."""
    return orjson.dumps(
        {
            "error": {
                "message": err.message,
                "type": ERROR_TYPE_FOR_KIND.get(err.kind, "server_error"),
                "param": err.param,
                "code": err.code if err.code is not None else ERROR_CODE_FOR_KIND.get(err.kind),
            }
        }
    )


def parse_error(status: int, body: bytes) -> GatewayError:
    """An upstream error response → :class:`GatewayError` (``retry_after`` is the caller's)."""
    message: str | None = None
    param: str | None = None
    code: str | None = None
    try:
        obj = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            message = err.get("message") if isinstance(err.get("message"), str) else None
            param = err.get("param") if isinstance(err.get("param"), str) else None
            code = str(err["code"]) if err.get("code") is not None else None
        elif isinstance(err, str):
            message = err
    if not message:
        message = (
            body.decode("utf-8", "replace").strip()[:500] or f"upstream returned HTTP {status}"
        )
    return GatewayError(
        upstream_kind_for_status(status),
        _redact(message),
        status=client_status_for_upstream(status),
        param=param,
        code=code,
        upstream_status=status,
    )
