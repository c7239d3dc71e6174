"""OpenAI Responses wire constants and mapping tables (data only)."""

from __future__ import annotations

import re
from typing import Any, Literal

from relaygate.canonical import (
    ErrorKind,
    Role,
    StopReason,
)
from relaygate.dialects import OPENAI_RESPONSES

NAME = OPENAI_RESPONSES
CONTENT_TYPE_STREAM = "text/event-stream"
ORIGIN = "openai"  # the provider family that signs reasoning items

# --------------------------------------------------------------------------- mapping tables

ROLE_FROM_WIRE: dict[str, Role] = {"user": Role.USER, "assistant": Role.ASSISTANT}
ROLE_TO_WIRE: dict[Role, str] = {v: k for k, v in ROLE_FROM_WIRE.items()}
SYSTEM_ROLES = frozenset({"system", "developer"})

STOP_FROM_INCOMPLETE: dict[str, StopReason] = {
    "max_output_tokens": StopReason.MAX_TOKENS,
    "content_filter": StopReason.CONTENT_FILTER,
}
INCOMPLETE_FROM_STOP: dict[StopReason, str] = {v: k for k, v in STOP_FROM_INCOMPLETE.items()}

ERROR_TYPE_FOR_KIND: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.BUDGET: "insufficient_quota",
    ErrorKind.LOOP: "loop_detected",
    ErrorKind.UPSTREAM: "server_error",
    ErrorKind.UNAVAILABLE: "service_unavailable",
    ErrorKind.OVERLOADED: "overloaded_error",
    ErrorKind.TIMEOUT: "timeout",
    ErrorKind.INTERNAL: "internal_error",
}
KIND_FOR_ERROR_TYPE: dict[str, ErrorKind] = {v: k for k, v in ERROR_TYPE_FOR_KIND.items()}
KIND_FOR_ERROR_TYPE.update(
    {
        "tokens": ErrorKind.RATE_LIMIT,
        "requests": ErrorKind.RATE_LIMIT,
        "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    }
)

ERROR_CODE_FOR_KIND: dict[ErrorKind, str] = {
    ErrorKind.AUTHENTICATION: "invalid_api_key",
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.BUDGET: "insufficient_quota",
    ErrorKind.LOOP: "loop_detected",
}

# ``response.failed`` carries ``error.code`` from a closed set (the SDK's ResponseError.code).
FAILED_CODE_FOR_KIND: dict[ErrorKind, str] = {
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.INVALID_REQUEST: "invalid_prompt",
}
KIND_FOR_FAILED_CODE: dict[str, ErrorKind] = {v: k for k, v in FAILED_CODE_FOR_KIND.items()}
KIND_FOR_FAILED_CODE.update(
    {
        "server_error": ErrorKind.UPSTREAM,
        "insufficient_quota": ErrorKind.RATE_LIMIT,
        "context_length_exceeded": ErrorKind.INVALID_REQUEST,
        "invalid_image": ErrorKind.INVALID_REQUEST,
        "invalid_image_url": ErrorKind.INVALID_REQUEST,
        "invalid_base64_image": ErrorKind.INVALID_REQUEST,
        "image_too_large": ErrorKind.INVALID_REQUEST,
    }
)

_CHOICE_MODES: dict[str, Literal["auto", "none", "required"]] = {
    "auto": "auto",
    "none": "none",
    "required": "required",
}
_FORMAT_TYPES: dict[str, Literal["text", "json_object", "json_schema"]] = {
    "text": "text",
    "json_object": "json_object",
    "json_schema": "json_schema",
}

# Responses rejects max_output_tokens below 16 (clients probe with max_tokens=1).
MIN_OUTPUT_TOKENS = 16
# Reasoning budgets from other dialects become an effort level (upper bound → effort).
EFFORT_FOR_BUDGET: tuple[tuple[int, str], ...] = ((2048, "low"), (12288, "medium"))
EFFORT_ABOVE_BUDGETS = "high"

_KNOWN_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "text",
        "stream",
        "metadata",
        "user",
    }
)
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


ENVELOPE_PREFIX = "relaygate.v1."


# --------------------------------------------------------------------------- errors and models

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(sk|pk|rk|sess)-[A-Za-z0-9_\-*]{4,}"), r"\1-***"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "AIza***"),
    (re.compile(r"\b(Bearer\s+)\S+"), r"\1***"),
)
