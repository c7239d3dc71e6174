"""Gemini error bodies (google.rpc.Status): rendered for clients, read back from the upstream."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.canonical import (
    ErrorKind,
    GatewayError,
    client_status_for_upstream,
    upstream_kind_for_status,
)
from relaygate.dialects.gemini._tables import _SECRETS, AUTH_REASONS, KIND_TO_STATUS, STATUS_TO_HTTP

# ----------------------------------------------------------------------------- errors and models


def _error_body(err: GatewayError) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": err.status,
        "message": err.message,
        "status": KIND_TO_STATUS.get(err.kind, "INTERNAL"),
    }
    details: list[dict[str, Any]] = []
    if err.param:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": err.param, "description": err.message}],
            }
        )
    if err.retry_after is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{err.retry_after:g}s",
            }
        )
    if details:
        error["details"] = details
    return {"error": error}


def render_error(err: GatewayError) -> bytes:
    """``{"error": {"code", "message", "status"[, "details"]}}``; HTTP status is ``err.status``."""
    return orjson.dumps(_error_body(err))


def _scrub(message: str) -> str:
    return _SECRETS.sub("***", message)


def _retry_delay(details: list[Any]) -> float | None:
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


def _error_from_obj(status: int | None, error: dict[str, Any]) -> GatewayError:
    grpc = error.get("status") if isinstance(error.get("status"), str) else None
    code = error.get("code")
    if status is None:
        status = (
            code if isinstance(code, int) and code >= 400 else STATUS_TO_HTTP.get(grpc or "", 500)
        )
    message = error.get("message")
    message = (
        _scrub(message)
        if isinstance(message, str) and message
        else f"upstream returned HTTP {status}"
    )
    raw_details = error.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    reason: str | None = None
    param: str | None = None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        if reason is None and isinstance(detail.get("reason"), str):
            reason = detail["reason"]
        violations = detail.get("fieldViolations")
        if (
            param is None
            and isinstance(violations, list)
            and violations
            and isinstance(violations[0], dict)
        ):
            field = violations[0].get("field")
            param = field if isinstance(field, str) else None
    kind = upstream_kind_for_status(status)
    client_status = client_status_for_upstream(status)
    if reason in AUTH_REASONS:  # Google says 400 for a bad key; it is *our* key that failed
        kind = ErrorKind.AUTHENTICATION
        client_status = client_status_for_upstream(401)
    return GatewayError(
        kind,
        message,
        status=client_status,
        param=param if kind is ErrorKind.INVALID_REQUEST else None,
        code=reason or grpc,
        retry_after=_retry_delay(details),
        upstream_status=status,
    )


def parse_error(status: int, body: bytes) -> GatewayError:
    """An upstream error response → :class:`GatewayError` (RetryInfo, when present, fills
    ``retry_after``; the caller may override it from headers)."""
    try:
        obj: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, list) and obj:  # streamGenerateContent without alt=sse wraps it in [ ]
        obj = obj[0]
    error = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(error, dict):
        return _error_from_obj(status, error)
    snippet = body[:200].decode("utf-8", "replace").strip()
    message = _scrub(f"upstream returned HTTP {status}" + (f": {snippet}" if snippet else ""))
    return GatewayError(
        upstream_kind_for_status(status),
        message,
        status=client_status_for_upstream(status),
        upstream_status=status,
    )
