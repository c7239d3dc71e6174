"""The admin API's envelope: ``{"success": true, "data": …}`` or
``{"success": false, "error": {"code", "message"}}`` with DESIGN.md's codes."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.redact import redact

CODES: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "INVALID_REQUEST",
    ErrorKind.REQUEST_TOO_LARGE: "INVALID_REQUEST",
    ErrorKind.AUTHENTICATION: "UNAUTHORIZED",
    ErrorKind.PERMISSION: "UNAUTHORIZED",
    ErrorKind.NOT_FOUND: "INVALID_REQUEST",  # DESIGN.md's codes have no NOT_FOUND; 404 says it
    ErrorKind.INTERNAL: "INTERNAL_ERROR",
}


def ok(data: Any) -> bytes:
    return orjson.dumps({"success": True, "data": data})


def fail(code: str, message: str) -> bytes:
    return orjson.dumps({"success": False, "error": {"code": code, "message": redact(message)}})


def error_body(err: GatewayError) -> bytes:
    return fail(CODES.get(err.kind, "GENERATION_ERROR"), err.message)
