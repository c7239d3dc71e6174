"""Anthropic wire constants and mapping tables (data only)."""

from __future__ import annotations

import re
from typing import Literal

from relaygate.canonical import (
    ErrorKind,
    Role,
    StopReason,
)
from relaygate.dialects import ANTHROPIC

NAME = ANTHROPIC
CONTENT_TYPE_STREAM = "text/event-stream"
FAMILY = "anthropic"  # ThinkingPart.origin of signatures this provider can verify
DEFAULT_MAX_TOKENS = 4096

# Request.extras key holding typed server tools (web_search_20250305, bash_…) with their position
# in ``tools``; only ever sent back to an Anthropic upstream.
SERVER_TOOLS_EXTRA = "anthropic:server_tools"

# --------------------------------------------------------------------------- mapping tables

STOP_REASON_FROM_WIRE: dict[str, StopReason] = {
    "end_turn": StopReason.END_TURN,
    "max_tokens": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "tool_use": StopReason.TOOL_USE,
    "pause_turn": StopReason.PAUSE,
    "refusal": StopReason.CONTENT_FILTER,
    "model_context_window_exceeded": StopReason.MAX_TOKENS,
}
STOP_REASON_TO_WIRE: dict[StopReason, str] = {
    StopReason.END_TURN: "end_turn",
    StopReason.MAX_TOKENS: "max_tokens",
    StopReason.STOP_SEQUENCE: "stop_sequence",
    StopReason.TOOL_USE: "tool_use",
    StopReason.PAUSE: "pause_turn",
    StopReason.CONTENT_FILTER: "refusal",
    StopReason.ERROR: "end_turn",
}

ROLE_FROM_WIRE: dict[str, Role] = {"user": Role.USER, "assistant": Role.ASSISTANT}
ROLE_TO_WIRE: dict[Role, str] = {Role.USER: "user", Role.ASSISTANT: "assistant", Role.TOOL: "user"}

ERROR_TYPE_FOR_KIND: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.BUDGET: "billing_error",
    ErrorKind.LOOP: "invalid_request_error",
    ErrorKind.UPSTREAM: "api_error",
    ErrorKind.UNAVAILABLE: "overloaded_error",
    ErrorKind.OVERLOADED: "overloaded_error",
    ErrorKind.TIMEOUT: "timeout_error",
    ErrorKind.INTERNAL: "api_error",
}
# For error events without a status (mid-stream, or an error body inside a 200).
KIND_FOR_ERROR_TYPE: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "billing_error": ErrorKind.PERMISSION,  # our key's account; another key may work
    "not_found_error": ErrorKind.NOT_FOUND,
    "request_too_large": ErrorKind.REQUEST_TOO_LARGE,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "timeout_error": ErrorKind.TIMEOUT,
    "api_error": ErrorKind.UPSTREAM,
    "overloaded_error": ErrorKind.OVERLOADED,
}

# Anthropic wants a token budget; other dialects speak in effort levels.
BUDGET_FOR_EFFORT: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32000,
    "max": 32000,
}
MIN_THINKING_BUDGET = 1024

# canonical Request attribute → Anthropic body key (set when present, in this order)
SAMPLING_TO_WIRE: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "stop": "stop_sequences",
}

_KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "metadata",
        "output_config",
    }
)
_SIG_PREFIX = "rg:"


_SECRET = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]+|(sk-[A-Za-z0-9]{2})[A-Za-z0-9_\-]{8,}"
)


_TOOL_CHOICE_FROM_WIRE: dict[str, Literal["auto", "none", "required", "tool"]] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
    "none": "none",
}


_TOOL_CHOICE_TO_WIRE = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}
