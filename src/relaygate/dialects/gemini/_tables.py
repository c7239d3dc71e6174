"""Gemini wire constants and mapping tables (data only)."""

from __future__ import annotations

import re
from typing import Literal

from relaygate.canonical import (
    ErrorKind,
    Role,
    StopReason,
)

NAME = "gemini"
CONTENT_TYPE_STREAM = "text/event-stream"
CONTENT_TYPE_ARRAY = "application/json"  # streamGenerateContent without ?alt=sse
ORIGIN = "gemini"  # provider family that signs thoughts
METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})

# ----------------------------------------------------------------------------- mapping tables

_CF = StopReason.CONTENT_FILTER
_ERR = StopReason.ERROR
FINISH_TO_STOP: dict[str, StopReason] = {
    "STOP": StopReason.END_TURN,
    "FINISH_REASON_UNSPECIFIED": StopReason.END_TURN,
    "MAX_TOKENS": StopReason.MAX_TOKENS,
    "SAFETY": _CF,
    "RECITATION": _CF,
    "BLOCKLIST": _CF,
    "PROHIBITED_CONTENT": _CF,
    "SPII": _CF,
    "IMAGE_SAFETY": _CF,
    "IMAGE_PROHIBITED_CONTENT": _CF,
    "IMAGE_RECITATION": _CF,
    "LANGUAGE": _ERR,
    "OTHER": _ERR,
    "MALFORMED_FUNCTION_CALL": _ERR,
    "UNEXPECTED_TOOL_CALL": _ERR,
    "TOO_MANY_TOOL_CALLS": _ERR,
    "MISSING_THOUGHT_SIGNATURE": _ERR,
    "MALFORMED_RESPONSE": _ERR,
    "IMAGE_OTHER": _ERR,
    "NO_IMAGE": _ERR,
}
# Gemini has no tool-use or stop-sequence reason: both are plain STOP on the wire.
STOP_TO_FINISH: dict[StopReason, str] = {
    StopReason.END_TURN: "STOP",
    StopReason.MAX_TOKENS: "MAX_TOKENS",
    StopReason.STOP_SEQUENCE: "STOP",
    StopReason.TOOL_USE: "STOP",
    StopReason.CONTENT_FILTER: "SAFETY",
    StopReason.PAUSE: "STOP",
    StopReason.ERROR: "OTHER",
}
ROLE_TO_CANONICAL: dict[str, Role] = {
    "user": Role.USER,
    "model": Role.ASSISTANT,
    "function": Role.TOOL,
}
CANONICAL_TO_ROLE: dict[Role, str] = {Role.USER: "user", Role.ASSISTANT: "model", Role.TOOL: "user"}
MODE_TO_CHOICE: dict[str, Literal["auto", "none", "required"]] = {
    "AUTO": "auto",
    "NONE": "none",
    "ANY": "required",
    "VALIDATED": "auto",
}
CHOICE_TO_MODE: dict[str, str] = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
LEVEL_TO_EFFORT: dict[str, str] = {
    "MINIMAL": "minimal",
    "LOW": "low",
    "MEDIUM": "medium",
    "HIGH": "high",
    "XHIGH": "xhigh",
}
EFFORT_TO_LEVEL: dict[str, str] = {
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
}
# For models without thinkingLevel (Gemini 2.x): roughly what each level spends.
EFFORT_TO_BUDGET: dict[str, int] = {"MINIMAL": 512, "LOW": 1024, "MEDIUM": 8192, "HIGH": 24576}
LEVEL_MODELS = re.compile(r"gemini-([3-9]|\d\d)")  # model ids that take thinkingLevel
KIND_TO_STATUS: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "INVALID_ARGUMENT",
    ErrorKind.AUTHENTICATION: "UNAUTHENTICATED",
    ErrorKind.PERMISSION: "PERMISSION_DENIED",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.REQUEST_TOO_LARGE: "INVALID_ARGUMENT",
    ErrorKind.RATE_LIMIT: "RESOURCE_EXHAUSTED",
    ErrorKind.BUDGET: "RESOURCE_EXHAUSTED",
    ErrorKind.LOOP: "ABORTED",
    ErrorKind.UPSTREAM: "INTERNAL",
    ErrorKind.UNAVAILABLE: "UNAVAILABLE",
    ErrorKind.OVERLOADED: "UNAVAILABLE",
    ErrorKind.TIMEOUT: "DEADLINE_EXCEEDED",
    ErrorKind.INTERNAL: "INTERNAL",
}
# google.rpc.Code names → the HTTP status Google pairs them with (used when a body has no code).
STATUS_TO_HTTP: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# ErrorInfo reasons that mean "our key is bad" although Google answers 400 INVALID_ARGUMENT.
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_NOT_FOUND"})

_GENERATION_FIELDS = {  # camelCase wire name → snake_case alias
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
    "maxOutputTokens": "max_output_tokens",
    "stopSequences": "stop_sequences",
    "candidateCount": "candidate_count",
    "responseMimeType": "response_mime_type",
    "responseSchema": "response_schema",
    "responseJsonSchema": "response_json_schema",
    "thinkingConfig": "thinking_config",
    "seed": "seed",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
}
_GENERATION_ALIASES = {snake: camel for camel, snake in _GENERATION_FIELDS.items()}
_TOP_LEVEL = {
    "contents": "contents",
    "systemInstruction": "system_instruction",
    "tools": "tools",
    "toolConfig": "tool_config",
    "generationConfig": "generation_config",
    "model": "model",
}
_TOP_ALIASES = {snake: camel for camel, snake in _TOP_LEVEL.items()}
_EXTRA_ALIASES = {"safety_settings": "safetySettings", "cached_content": "cachedContent"}

# canonical Request attribute → generationConfig key (set when present, in this order)
SAMPLING_TO_WIRE: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "stop": "stopSequences",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}

_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_SYNTH_ID = re.compile(r"^call_\d+_(.+)$")
_SECRETS = re.compile(r"AIza[0-9A-Za-z_\-]{20,}|(?<=[?&]key=)[^&\s\"']+")


# ----------------------------------------------------------------------------- response: both ways

_RESPONSE_KEYS = frozenset({"candidates", "usageMetadata", "modelVersion", "responseId"})
_CANDIDATE_KEYS = frozenset({"content", "finishReason", "index"})
