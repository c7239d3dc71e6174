"""The canonical model: the hub every dialect translates into and out of.

No I/O lives here. Dialect modules turn client bodies into :class:`Request`, backends turn
:class:`Request` into upstream bodies, and responses come back as :class:`Response` or as a
sequence of :class:`StreamEvent` values.

Conventions
-----------
* ``Request.system`` holds system instructions as text parts (Anthropic ``system``, OpenAI
  ``system``/``developer`` messages, Responses ``instructions``, Gemini ``systemInstruction``).
* A tool call's arguments are kept as the JSON *text* the model produced, so nothing is lost
  when a model emits invalid or partial JSON.
* Thinking parts remember which provider family signed them (``origin``); a signature is only
  ever sent back to the family that produced it.
* ``extras`` keeps fields with no canonical counterpart, tagged by the dialect they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

JSON = Any  # a value decoded from JSON


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"  # tool results; dialects without a tool role fold these into user turns


class StopReason(StrEnum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    CONTENT_FILTER = "content_filter"
    PAUSE = "pause"
    ERROR = "error"


# --------------------------------------------------------------------------- content parts


@dataclass(slots=True)
class TextPart:
    text: str
    cache_control: dict[str, JSON] | None = None
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ImagePart:
    """An image given either inline (``data`` is base64) or by ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None
    cache_control: dict[str, JSON] | None = None
    type: Literal["image"] = "image"


@dataclass(slots=True)
class DocumentPart:
    """A file (PDF and friends) given inline or by URL."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    filename: str | None = None
    cache_control: dict[str, JSON] | None = None
    type: Literal["document"] = "document"


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str  # JSON text, exactly as produced
    cache_control: dict[str, JSON] | None = None
    type: Literal["tool_call"] = "tool_call"


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    content: list[TextPart | ImagePart | DocumentPart]
    is_error: bool = False
    name: str | None = None  # Gemini needs the function name on a functionResponse
    cache_control: dict[str, JSON] | None = None  # Claude Code puts breakpoints on results
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ThinkingPart:
    """Reasoning text; ``signature`` is opaque and only valid for ``origin``'s provider family.

    ``redacted`` holds Anthropic's encrypted ``redacted_thinking`` data (or an OpenAI
    ``encrypted_content``) which has no text at all.
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    origin: str | None = None  # "anthropic", "openai", "gemini", …
    id: str | None = None
    type: Literal["thinking"] = "thinking"


ContentPart = TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ThinkingPart


@dataclass(slots=True)
class Message:
    role: Role
    content: list[ContentPart]
    name: str | None = None

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


# --------------------------------------------------------------------------- tools


@dataclass(slots=True)
class ToolSpec:
    name: str
    description: str | None = None
    parameters: dict[str, JSON] | None = None  # JSON schema
    strict: bool | None = None
    cache_control: dict[str, JSON] | None = None


@dataclass(slots=True)
class ToolChoice:
    """``auto`` | ``none`` | ``required`` (any tool) | ``tool`` (the one named).

    ``names`` narrows ``auto``/``required`` to a subset of the declared tools (Gemini
    ``allowedFunctionNames``, OpenAI ``allowed_tools``); ``None`` means all of them.
    """

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None
    names: list[str] | None = None
    parallel: bool | None = None  # False when the client disabled parallel tool calls


@dataclass(slots=True)
class ResponseFormat:
    """``text`` | ``json_object`` | ``json_schema`` (``schema`` set)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, JSON] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class ThinkingConfig:
    """What the client asked of reasoning. ``budget_tokens`` or ``effort`` may be set."""

    enabled: bool = True
    budget_tokens: int | None = None
    effort: str | None = None  # "minimal" | "low" | "medium" | "high" | …
    adaptive: bool = False
    include_thoughts: bool | None = None  # show thought summaries (Gemini); None: dialect default


# --------------------------------------------------------------------------- request


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message]
    system: list[TextPart] = field(default_factory=list)
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    response_format: ResponseFormat | None = None
    thinking: ThinkingConfig | None = None
    user: str | None = None
    seed: int | None = None
    n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    include_usage: bool = True  # OpenAI stream_options.include_usage
    metadata: dict[str, JSON] = field(default_factory=dict)
    extras: dict[str, JSON] = field(default_factory=dict)
    source_dialect: str | None = None

    def system_text(self) -> str:
        return "\n\n".join(p.text for p in self.system)


# --------------------------------------------------------------------------- response


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0  # prompt tokens, *including* cached ones
    output_tokens: int = 0  # completion tokens, *including* reasoning ones
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def merge(self, other: Usage) -> None:
        """Take every non-zero count of ``other`` (streams report usage piecemeal)."""
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        ):
            value = getattr(other, name)
            if value:
                setattr(self, name, value)


@dataclass(slots=True)
class Response:
    id: str
    model: str
    content: list[ContentPart]
    stop_reason: StopReason = StopReason.END_TURN
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    created: int = 0
    extras: dict[str, JSON] = field(default_factory=dict)

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.content if isinstance(p, ToolCallPart)]


# --------------------------------------------------------------------------- stream events
#
# A stream is: MessageStart, then blocks (each opened by a *Start event carrying its index,
# filled by deltas, closed by BlockStop), then UsageEvent (zero or more), then MessageStop.
# A stream that fails mid-way ends with ErrorEvent instead of MessageStop.


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage | None = None
    created: int = 0
    kind: Literal["message_start"] = "message_start"


@dataclass(slots=True)
class TextStart:
    index: int
    kind: Literal["text_start"] = "text_start"


@dataclass(slots=True)
class TextDelta:
    index: int
    text: str
    kind: Literal["text_delta"] = "text_delta"


@dataclass(slots=True)
class ThinkingStart:
    index: int
    redacted: str | None = None
    origin: str | None = None  # provider family, for a redacted block that has no delta
    id: str | None = None  # the provider's id for the block (a Responses reasoning item id)
    kind: Literal["thinking_start"] = "thinking_start"


@dataclass(slots=True)
class ThinkingDelta:
    index: int
    text: str = ""
    signature: str | None = None
    origin: str | None = None
    kind: Literal["thinking_delta"] = "thinking_delta"


@dataclass(slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str
    kind: Literal["tool_call_start"] = "tool_call_start"


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    arguments: str  # a fragment of the JSON text
    kind: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(slots=True)
class BlockStop:
    index: int
    kind: Literal["block_stop"] = "block_stop"


@dataclass(slots=True)
class UsageEvent:
    usage: Usage
    kind: Literal["usage"] = "usage"


@dataclass(slots=True)
class MessageStop:
    stop_reason: StopReason
    stop_sequence: str | None = None
    kind: Literal["message_stop"] = "message_stop"


@dataclass(slots=True)
class ErrorEvent:
    error: GatewayError
    kind: Literal["error"] = "error"


StreamEvent = (
    MessageStart
    | TextStart
    | TextDelta
    | ThinkingStart
    | ThinkingDelta
    | ToolCallStart
    | ToolCallDelta
    | BlockStop
    | UsageEvent
    | MessageStop
    | ErrorEvent
)


@dataclass(slots=True)
class ModelInfo:
    """One model of the inventory. ``id`` is the client-facing ``prefix/native_id``."""

    id: str
    native_id: str
    backend: str  # backend instance id
    display_name: str | None = None
    owned_by: str | None = None
    created: int = 0
    context_window: int | None = None


# --------------------------------------------------------------------------- errors


class ErrorKind(StrEnum):
    INVALID_REQUEST = "invalid_request"  # 400
    AUTHENTICATION = "authentication"  # 401
    PERMISSION = "permission"  # 403
    NOT_FOUND = "not_found"  # 404
    REQUEST_TOO_LARGE = "request_too_large"  # 413
    RATE_LIMIT = "rate_limit"  # 429
    BUDGET = "budget"  # 402
    LOOP = "loop_detected"  # 508
    UPSTREAM = "upstream_error"  # 502
    UNAVAILABLE = "unavailable"  # 503
    OVERLOADED = "overloaded"  # 529 upstream; 503 to clients
    TIMEOUT = "timeout"  # 504
    INTERNAL = "internal"  # 500


DEFAULT_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.BUDGET: 402,
    ErrorKind.LOOP: 508,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.INTERNAL: 500,
}

# Which kinds a router may retry or fail over on.
RETRYABLE_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.UPSTREAM,
        ErrorKind.UNAVAILABLE,
        ErrorKind.OVERLOADED,
        ErrorKind.TIMEOUT,
        ErrorKind.AUTHENTICATION,  # another key or another backend may work
        ErrorKind.PERMISSION,
    }
)


class GatewayError(Exception):
    """A dialect-neutral error. Dialects render it in their own shape.

    ``status`` is what the client sees; ``upstream_status`` what the provider said, if any.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        upstream_status: int | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status if status is not None else DEFAULT_STATUS[kind]
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.upstream_status = upstream_status
        self.backend = backend

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def __repr__(self) -> str:
        return f"GatewayError({self.kind.value}, {self.status}, {self.message!r})"


def invalid(message: str, param: str | None = None) -> GatewayError:
    """Shorthand for a client's bad request."""
    return GatewayError(ErrorKind.INVALID_REQUEST, message, param=param)


def upstream_kind_for_status(status: int) -> ErrorKind:
    """Map an upstream HTTP status to the error kind relaygate reports."""
    if status == 400 or status == 422:
        return ErrorKind.INVALID_REQUEST
    if status == 401:
        return ErrorKind.AUTHENTICATION
    if status == 403:
        return ErrorKind.PERMISSION
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 413:
        return ErrorKind.REQUEST_TOO_LARGE
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status == 529:
        return ErrorKind.OVERLOADED
    if status == 503:
        return ErrorKind.UNAVAILABLE
    if status == 504 or status == 408:
        return ErrorKind.TIMEOUT
    return ErrorKind.UPSTREAM


def client_status_for_upstream(status: int) -> int:
    """The status a client sees for an upstream failure: its own 4xx stay (they are about the
    request), auth failures of *our* key become 502, server-side ones become 502/503/504."""
    kind = upstream_kind_for_status(status)
    if kind in (ErrorKind.INVALID_REQUEST, ErrorKind.NOT_FOUND, ErrorKind.REQUEST_TOO_LARGE):
        return status
    if kind is ErrorKind.RATE_LIMIT:
        return 429
    if kind in (ErrorKind.AUTHENTICATION, ErrorKind.PERMISSION, ErrorKind.UPSTREAM):
        return 502
    if kind in (ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED):
        return 503
    return 504


__all__ = [
    "JSON",
    "BlockStop",
    "ContentPart",
    "DocumentPart",
    "ErrorEvent",
    "ErrorKind",
    "GatewayError",
    "ImagePart",
    "Message",
    "MessageStart",
    "ModelInfo",
    "MessageStop",
    "Request",
    "Response",
    "ResponseFormat",
    "Role",
    "StopReason",
    "StreamEvent",
    "TextDelta",
    "TextPart",
    "TextStart",
    "ThinkingConfig",
    "ThinkingDelta",
    "ThinkingPart",
    "ThinkingStart",
    "ToolCallDelta",
    "ToolCallPart",
    "ToolCallStart",
    "ToolChoice",
    "ToolResultPart",
    "ToolSpec",
    "Usage",
    "UsageEvent",
    "client_status_for_upstream",
    "invalid",
    "upstream_kind_for_status",
]
