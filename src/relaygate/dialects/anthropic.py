"""The Anthropic Messages dialect (``POST /v1/messages``), both as a client and as an upstream.

Wire facts this module relies on:

* ``usage.input_tokens`` *excludes* cache reads and writes; canonical input is the sum of the three.
* A stream is ``message_start``, ``ping``, blocks (``content_block_start`` / ``_delta`` /
  ``_stop``, strictly one after another), ``message_delta`` (stop reason and usage), then
  ``message_stop``. A failure mid-way is ``event: error``.
* Tool results live in *user* turns; canonical gives each its own ``TOOL`` message.
* A thinking block's signature is only valid for Anthropic. Thinking that came from another
  family is shown to Anthropic clients with its origin wrapped into the signature
  (``rg:<origin>:<signature>``), so a client echoing it back (Claude Code does) hands the
  original family its own signature again; such blocks are never sent to Anthropic.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from relaygate.canonical import (
    JSON,
    BlockStop,
    ContentPart,
    DocumentPart,
    ErrorEvent,
    ErrorKind,
    GatewayError,
    ImagePart,
    Message,
    MessageStart,
    MessageStop,
    ModelInfo,
    Request,
    Response,
    ResponseFormat,
    Role,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    ThinkingConfig,
    ThinkingDelta,
    ThinkingPart,
    ThinkingStart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
    client_status_for_upstream,
    invalid,
    upstream_kind_for_status,
)
from relaygate.dialects import ANTHROPIC
from relaygate.dialects.sse import SSEEvent

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- small helpers


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _json_text(value: JSON) -> str:
    return orjson.dumps(value).decode()


def _wrap_signature(origin: str | None, value: str | None) -> str:
    """A signature as an Anthropic client sees it: raw for Anthropic's own, tagged otherwise."""
    if origin == FAMILY:
        return value or ""
    if origin is None:
        return value or ""
    return f"{_SIG_PREFIX}{origin}:{value or ''}"


def _unwrap_signature(value: str | None) -> tuple[str | None, str | None]:
    """``(origin, signature)`` of a signature received from an Anthropic client."""
    if not value:
        return None, None
    if value.startswith(_SIG_PREFIX):
        origin, _, sig = value[len(_SIG_PREFIX) :].partition(":")
        return origin or None, sig or None
    return FAMILY, value


def _usage_from_wire(raw: dict[str, Any]) -> Usage:
    fresh = raw.get("input_tokens") or 0
    read = raw.get("cache_read_input_tokens") or 0
    write = raw.get("cache_creation_input_tokens") or 0
    details = raw.get("output_tokens_details")
    reasoning = (details.get("thinking_tokens") or 0) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=fresh + read + write,
        output_tokens=raw.get("output_tokens") or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )


def _usage_to_wire(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": max(
            0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
        ),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


_SECRET = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]+|(sk-[A-Za-z0-9]{2})[A-Za-z0-9_\-]{8,}"
)


def _redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


# =========================================================================== client side: parse


def parse_request(body: dict[str, Any]) -> Request:
    """An Anthropic Messages body → :class:`Request`; bad input raises ``invalid(…, param)``.

    >>> parse_request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}).messages[0].text()
    'hi'
    """
    return _parse_request(body, require_max_tokens=True)


def count_tokens_request(body: dict[str, Any]) -> Request:
    """``POST /v1/messages/count_tokens``: the same body minus the need for ``max_tokens``."""
    return _parse_request(body, require_max_tokens=False)


def render_count_tokens(n: int) -> bytes:
    return _dumps({"input_tokens": n})


def _parse_request(body: dict[str, Any], *, require_max_tokens: bool) -> Request:
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: field required (a string)", "model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise invalid("messages: field required (a list)", "messages")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        if require_max_tokens:
            raise invalid("max_tokens: field required", "max_tokens")
    elif not _is_int(max_tokens) or max_tokens < 1:
        raise invalid("max_tokens: must be a positive integer", "max_tokens")

    system = _parse_system(body.get("system"), "system")
    messages: list[Message] = []
    for i, raw in enumerate(raw_messages):
        _parse_message(raw, f"messages.{i}", messages, system)

    request = Request(
        model=model,
        messages=messages,
        system=system,
        max_tokens=max_tokens,
        source_dialect=NAME,
    )
    if "tools" in body and body["tools"] is not None:
        _parse_tools(body["tools"], request)
    if body.get("tool_choice") is not None:
        request.tool_choice = _parse_tool_choice(body["tool_choice"])
    if body.get("thinking") is not None:
        request.thinking = _parse_thinking(body["thinking"])
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if not _is_number(value):
                raise invalid(f"{name}: must be a number", name)
            setattr(request, name, float(value))
    top_k = body.get("top_k")
    if top_k is not None:
        if not _is_int(top_k):
            raise invalid("top_k: must be an integer", "top_k")
        request.top_k = top_k
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise invalid("stop_sequences: must be a list of strings", "stop_sequences")
        request.stop = list(stop)
    stream = body.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise invalid("stream: must be a boolean", "stream")
        request.stream = stream
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise invalid("metadata: must be an object", "metadata")
        rest = dict(metadata)
        user = rest.pop("user_id", None)
        if user is not None and not isinstance(user, str):
            raise invalid("metadata.user_id: must be a string", "metadata.user_id")
        request.user = user
        request.metadata = rest
    output_config = body.get("output_config")
    if output_config is not None:
        _parse_output_config(output_config, request)
    for key, value in body.items():
        if key not in _KNOWN_FIELDS:
            request.extras[key] = value
    return request


def _parse_system(raw: object, param: str) -> list[TextPart]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(raw)] if raw else []
    if not isinstance(raw, list):
        raise invalid(f"{param}: must be a string or a list of text blocks", param)
    parts: list[TextPart] = []
    for i, block in enumerate(raw):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid(f"{param}.{i}: must be a text block", f"{param}.{i}")
        parts.append(_parse_text(block, f"{param}.{i}"))
    return parts


def _parse_text(block: dict[str, Any], param: str) -> TextPart:
    text = block.get("text")
    if not isinstance(text, str):
        raise invalid(f"{param}.text: field required (a string)", f"{param}.text")
    cache = block.get("cache_control")
    if cache is not None and not isinstance(cache, dict):
        raise invalid(f"{param}.cache_control: must be an object", f"{param}.cache_control")
    return TextPart(text, cache_control=cache)


def _parse_message(raw: object, param: str, out: list[Message], system: list[TextPart]) -> None:
    if not isinstance(raw, dict):
        raise invalid(f"{param}: must be an object", param)
    role = raw.get("role")
    content = raw.get("content")
    if role == "system":
        # Claude Code sends system reminders as system-role messages; fold them into system.
        system.extend(_parse_system(content, f"{param}.content"))
        return
    if role not in ROLE_FROM_WIRE:
        raise invalid(f"{param}.role: must be 'user' or 'assistant'", f"{param}.role")
    if isinstance(content, str):
        out.append(Message(ROLE_FROM_WIRE[role], [TextPart(content)]))
        return
    if not isinstance(content, list):
        raise invalid(f"{param}.content: field required (a string or a list)", f"{param}.content")
    parts: list[ContentPart] = []
    for i, block in enumerate(content):
        bparam = f"{param}.content.{i}"
        if not isinstance(block, dict):
            raise invalid(f"{bparam}: must be an object", bparam)
        part = _parse_block(block, bparam)
        if part is None:
            continue
        if isinstance(part, ToolResultPart):
            # Each result becomes its own TOOL message, in order, before the turn's other parts.
            out.append(Message(Role.TOOL, [part]))
        else:
            parts.append(part)
    if parts or not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        out.append(Message(ROLE_FROM_WIRE[role], parts))


def _parse_block(block: dict[str, Any], param: str) -> ContentPart | None:
    kind = block.get("type")
    if kind == "text":
        return _parse_text(block, param)
    if kind == "image":
        return _parse_image(block, param)
    if kind == "document":
        return _parse_document(block, param)
    if kind == "tool_use":
        ident, name = block.get("id"), block.get("name")
        if not isinstance(ident, str):
            raise invalid(f"{param}.id: field required (a string)", f"{param}.id")
        if not isinstance(name, str):
            raise invalid(f"{param}.name: field required (a string)", f"{param}.name")
        args = block.get("input", {})
        if not isinstance(args, dict):
            raise invalid(f"{param}.input: must be an object", f"{param}.input")
        return ToolCallPart(ident, name, _json_text(args))
    if kind == "tool_result":
        return _parse_tool_result(block, param)
    if kind == "thinking":
        text = block.get("thinking")
        if not isinstance(text, str):
            raise invalid(f"{param}.thinking: field required (a string)", f"{param}.thinking")
        signature = block.get("signature")
        if signature is not None and not isinstance(signature, str):
            raise invalid(f"{param}.signature: must be a string", f"{param}.signature")
        origin, sig = _unwrap_signature(signature)
        return ThinkingPart(text=text, signature=sig, origin=origin)
    if kind == "redacted_thinking":
        data = block.get("data")
        if not isinstance(data, str):
            raise invalid(f"{param}.data: field required (a string)", f"{param}.data")
        origin, sig = _unwrap_signature(data)
        return ThinkingPart(redacted=sig or "", origin=origin)
    if not isinstance(kind, str):
        raise invalid(f"{param}.type: field required", f"{param}.type")
    log.warning("anthropic: dropping content block of type %r (no canonical form)", kind)
    return None


def _parse_image(block: dict[str, Any], param: str) -> ImagePart:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{param}.source: field required (an object)", f"{param}.source")
    stype = source.get("type")
    if stype == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str):
            raise invalid(
                f"{param}.source.media_type: field required", f"{param}.source.media_type"
            )
        if not isinstance(data, str):
            raise invalid(f"{param}.source.data: field required", f"{param}.source.data")
        return ImagePart(media_type=media, data=data)
    if stype == "url":
        url = source.get("url")
        if not isinstance(url, str):
            raise invalid(f"{param}.source.url: field required", f"{param}.source.url")
        return ImagePart(url=url)
    raise invalid(
        f"{param}.source.type: unsupported image source {stype!r}", f"{param}.source.type"
    )


def _parse_document(block: dict[str, Any], param: str) -> DocumentPart:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{param}.source: field required (an object)", f"{param}.source")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    stype = source.get("type")
    data = source.get("data")
    if stype == "base64" and isinstance(data, str):
        media = source.get("media_type")
        return DocumentPart(
            media_type=media if isinstance(media, str) else "application/pdf",
            data=data,
            filename=title,
        )
    if stype == "text" and isinstance(data, str):
        # Canonical inline data is base64 whatever the media type.
        encoded = base64.b64encode(data.encode()).decode()
        return DocumentPart(media_type="text/plain", data=encoded, filename=title)
    if stype == "url" and isinstance(source.get("url"), str):
        return DocumentPart(url=source["url"], filename=title)
    raise invalid(f"{param}.source: unsupported document source {stype!r}", f"{param}.source")


def _parse_tool_result(block: dict[str, Any], param: str) -> ToolResultPart:
    ident = block.get("tool_use_id")
    if not isinstance(ident, str):
        raise invalid(f"{param}.tool_use_id: field required (a string)", f"{param}.tool_use_id")
    raw = block.get("content")
    content: list[TextPart | ImagePart] = []
    if isinstance(raw, str):
        content.append(TextPart(raw))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            iparam = f"{param}.content.{i}"
            if not isinstance(item, dict):
                raise invalid(f"{iparam}: must be an object", iparam)
            if item.get("type") == "text":
                content.append(_parse_text(item, iparam))
            elif item.get("type") == "image":
                content.append(_parse_image(item, iparam))
            else:
                log.warning("anthropic: dropping tool_result block of type %r", item.get("type"))
    elif raw is not None:
        raise invalid(f"{param}.content: must be a string or a list", f"{param}.content")
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise invalid(f"{param}.is_error: must be a boolean", f"{param}.is_error")
    return ToolResultPart(ident, content, is_error=is_error)


def _parse_tools(raw: object, request: Request) -> None:
    if not isinstance(raw, list):
        raise invalid("tools: must be a list", "tools")
    server: list[dict[str, Any]] = []
    for i, tool in enumerate(raw):
        param = f"tools.{i}"
        if not isinstance(tool, dict):
            raise invalid(f"{param}: must be an object", param)
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(f"{param}.name: field required (a string)", f"{param}.name")
        if "input_schema" not in tool and tool.get("type") not in (None, "custom"):
            server.append({"index": i, "tool": tool})
            continue
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise invalid(
                f"{param}.input_schema: field required (an object)", f"{param}.input_schema"
            )
        description = tool.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid(f"{param}.description: must be a string", f"{param}.description")
        strict = tool.get("strict")
        request.tools.append(
            ToolSpec(
                name=name,
                description=description,
                parameters=schema,
                strict=strict if isinstance(strict, bool) else None,
                cache_control=tool.get("cache_control"),
            )
        )
    if server:
        request.extras[SERVER_TOOLS_EXTRA] = server


_TOOL_CHOICE_FROM_WIRE: dict[str, Literal["auto", "none", "required", "tool"]] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
    "none": "none",
}


def _parse_tool_choice(raw: object) -> ToolChoice:
    if not isinstance(raw, dict):
        raise invalid("tool_choice: must be an object", "tool_choice")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _TOOL_CHOICE_FROM_WIRE:
        raise invalid("tool_choice.type: must be auto, any, tool or none", "tool_choice.type")
    choice = ToolChoice(mode=_TOOL_CHOICE_FROM_WIRE[kind])
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str):
            raise invalid("tool_choice.name: field required", "tool_choice.name")
        choice.name = name
    disable = raw.get("disable_parallel_tool_use")
    if disable is not None:
        if not isinstance(disable, bool):
            raise invalid(
                "tool_choice.disable_parallel_tool_use: must be a boolean",
                "tool_choice.disable_parallel_tool_use",
            )
        choice.parallel = not disable
    return choice


def _parse_thinking(raw: object) -> ThinkingConfig:
    if not isinstance(raw, dict):
        raise invalid("thinking: must be an object", "thinking")
    kind = raw.get("type")
    if kind == "enabled":
        budget = raw.get("budget_tokens")
        if not _is_int(budget):
            raise invalid(
                "thinking.budget_tokens: field required (an integer)", "thinking.budget_tokens"
            )
        return ThinkingConfig(enabled=True, budget_tokens=budget)
    if kind == "adaptive":
        return ThinkingConfig(enabled=True, adaptive=True)
    if kind == "disabled":
        return ThinkingConfig(enabled=False)
    raise invalid("thinking.type: must be enabled, adaptive or disabled", "thinking.type")


def _parse_output_config(raw: object, request: Request) -> None:
    if not isinstance(raw, dict):
        raise invalid("output_config: must be an object", "output_config")
    rest = dict(raw)
    fmt = rest.pop("format", None)
    if fmt is not None:
        if (
            not isinstance(fmt, dict)
            or fmt.get("type") != "json_schema"
            or not isinstance(fmt.get("schema"), dict)
        ):
            raise invalid(
                "output_config.format: must be {type: json_schema, schema}", "output_config.format"
            )
        request.response_format = ResponseFormat(type="json_schema", schema=fmt["schema"])
    effort = raw.get("effort")
    if isinstance(effort, str) and request.thinking is not None:
        # Informational for other dialects; the original stays in extras for Anthropic.
        request.thinking.effort = effort
    if rest:
        request.extras["output_config"] = rest


# =========================================================================== client side: render


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _tool_input(arguments: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        log.warning("anthropic: tool arguments are not valid JSON; sending an empty input")
        return {}
    if not isinstance(value, dict):
        log.warning("anthropic: tool arguments are not a JSON object; sending an empty input")
        return {}
    return value


def _response_block(part: ContentPart) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": part.id,
            "name": part.name,
            "input": _tool_input(part.arguments),
        }
    if isinstance(part, ThinkingPart):
        if part.redacted is not None:
            return {
                "type": "redacted_thinking",
                "data": _wrap_signature(part.origin, part.redacted),
            }
        return {
            "type": "thinking",
            "thinking": part.text,
            "signature": _wrap_signature(part.origin, part.signature),
        }
    log.warning("anthropic: dropping %s part from a response", part.type)
    return None


def render_response(response: Response) -> bytes:
    content = [b for b in map(_response_block, response.content) if b is not None]
    return _dumps(
        {
            "id": response.id,
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": content,
            "stop_reason": STOP_REASON_TO_WIRE[response.stop_reason],
            "stop_sequence": response.stop_sequence,
            "usage": _usage_to_wire(response.usage),
        }
    )


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
    return _dumps(_error_body(err))


def render_models(models: list[ModelInfo]) -> bytes:
    data = [
        {
            "type": "model",
            "id": m.id,
            "display_name": m.display_name or m.id,
            "created_at": datetime.fromtimestamp(m.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lifecycle": "active",
        }
        for m in models
    ]
    return _dumps(
        {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


def _sse(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


_PING = b'event: ping\ndata: {"type":"ping"}\n\n'


class _Block:
    __slots__ = ("pending", "stopped", "wire")

    def __init__(self, wire: int) -> None:
        self.wire = wire
        self.pending: list[bytes] = []
        self.stopped = False


class AnthropicStreamRenderer:
    """Canonical events → Anthropic SSE.

    Anthropic blocks never interleave on the wire, while canonical ones may (an OpenAI upstream
    can stream two tool calls at once). Events of the block being written go out at once; those
    of blocks opened later wait until every earlier block has stopped. Sequential upstreams,
    the usual case, therefore pass straight through.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._started = False
        self._finished = False
        self._blocks: dict[int, _Block] = {}  # canonical index → block
        self._order: list[_Block] = []  # by wire index
        self._active = 0  # wire index currently being written
        self._usage = Usage()

    # -- helpers

    def _start(
        self, ident: str = "msg_relaygate", model: str = "", usage: Usage | None = None
    ) -> bytes:
        self._started = True
        if usage is not None:
            self._usage.merge(usage)
        wire_usage = _usage_to_wire(self._usage)
        wire_usage.pop("output_tokens_details", None)
        message: dict[str, Any] = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": self.model or model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": wire_usage,
        }
        return _sse("message_start", {"type": "message_start", "message": message}) + _PING

    def _emit(self, index: int, data: bytes) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            return b""
        if block.wire == self._active:
            return data
        block.pending.append(data)
        return b""

    def _open(self, index: int, content_block: dict[str, Any]) -> bytes:
        block = _Block(len(self._order))
        self._blocks[index] = block
        self._order.append(block)
        payload = {
            "type": "content_block_start",
            "index": block.wire,
            "content_block": content_block,
        }
        return self._emit(index, _sse("content_block_start", payload))

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            return b""
        payload = {"type": "content_block_delta", "index": block.wire, "delta": delta}
        return self._emit(index, _sse("content_block_delta", payload))

    def _stop(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is None or block.stopped:
            return b""
        block.stopped = True
        stop = _sse("content_block_stop", {"type": "content_block_stop", "index": block.wire})
        if block.wire != self._active:
            block.pending.append(stop)
            return b""
        return stop + self._advance()

    def _advance(self) -> bytes:
        """The active block stopped: flush the blocks queued behind it."""
        out = b""
        while True:
            self._active += 1
            if self._active >= len(self._order):
                return out
            block = self._order[self._active]
            out += b"".join(block.pending)
            block.pending.clear()
            if not block.stopped:
                return out

    def _close_all(self) -> bytes:
        out = b""
        for index, block in list(self._blocks.items()):  # insertion order is wire order
            if not block.stopped:
                out += self._stop(index)
        return out

    # -- the protocol

    def feed(self, event: StreamEvent) -> bytes:
        if self._finished:
            return b""
        if isinstance(event, ErrorEvent):
            return self.error(event.error)
        if isinstance(event, MessageStart):
            if self._started:
                return b""
            return self._start(event.id, event.model, event.usage)
        head = b"" if self._started else self._start()
        if isinstance(event, TextDelta):
            return head + self._delta(event.index, {"type": "text_delta", "text": event.text})
        if isinstance(event, ToolCallDelta):
            return head + self._delta(
                event.index, {"type": "input_json_delta", "partial_json": event.arguments}
            )
        if isinstance(event, ThinkingDelta):
            out = head
            if event.text:
                out += self._delta(event.index, {"type": "thinking_delta", "thinking": event.text})
            if event.signature:
                out += self._delta(
                    event.index,
                    {
                        "type": "signature_delta",
                        "signature": _wrap_signature(event.origin, event.signature),
                    },
                )
            return out
        if isinstance(event, TextStart):
            return head + self._open(event.index, {"type": "text", "text": ""})
        if isinstance(event, ToolCallStart):
            return head + self._open(
                event.index, {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
            )
        if isinstance(event, ThinkingStart):
            if event.redacted is not None:
                return head + self._open(
                    event.index, {"type": "redacted_thinking", "data": event.redacted}
                )
            return head + self._open(
                event.index, {"type": "thinking", "thinking": "", "signature": ""}
            )
        if isinstance(event, BlockStop):
            return head + self._stop(event.index)
        if isinstance(event, UsageEvent):
            self._usage.merge(event.usage)
            return head
        # MessageStop
        self._finished = True
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": STOP_REASON_TO_WIRE[event.stop_reason],
                "stop_sequence": event.stop_sequence,
            },
            "usage": _usage_to_wire(self._usage),
        }
        return (
            head
            + self._close_all()
            + _sse("message_delta", delta)
            + _sse("message_stop", {"type": "message_stop"})
        )

    def error(self, err: GatewayError) -> bytes:
        """Anthropic's terminal ``event: error`` for a stream that broke after its first byte."""
        self._finished = True
        return _sse("error", _error_body(err))


def make_renderer(model: str) -> AnthropicStreamRenderer:
    return AnthropicStreamRenderer(model)


class AnthropicStreamWatch:
    """Scans raw Anthropic SSE bytes for usage and ``message_stop`` without decoding every event.

    Only ``data:`` lines holding ``"message_start"``, ``"message_delta"``, ``"message_stop"`` or
    ``"error"`` (as JSON strings, so never inside escaped text) are parsed.
    """

    _MARKERS = (b'"message_start"', b'"message_delta"', b'"message_stop"', b'"error"')

    def __init__(self) -> None:
        self.usage = Usage()
        self.complete = False
        self.failed = False
        self._tail = b""
        self._raw: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> None:
        buf = self._tail + chunk if self._tail else chunk
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
        if cut < 0:
            self._tail = buf
            return
        self._tail = buf[cut + 1 :]
        part = buf[: cut + 1]
        if not any(m in part for m in self._MARKERS):
            return
        for line in part.splitlines():
            if line.startswith(b"data:") and any(m in line for m in self._MARKERS):
                self._line(line[5:])

    def _line(self, data: bytes) -> None:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(obj, dict):
            return
        kind = obj.get("type")
        raw: Any = None
        if kind == "message_start":
            message = obj.get("message")
            raw = message.get("usage") if isinstance(message, dict) else None
        elif kind == "message_delta":
            raw = obj.get("usage")
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.failed = True
        if isinstance(raw, dict):
            self._raw.update({k: v for k, v in raw.items() if v is not None})
            self.usage = _usage_from_wire(self._raw)


def make_watch() -> AnthropicStreamWatch:
    return AnthropicStreamWatch()


# =========================================================================== upstream side: build


def build_request(
    request: Request, native_model: str, *, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    """:class:`Request` → an Anthropic Messages body for ``native_model``.

    ``max_tokens`` is mandatory upstream: ``request.max_tokens``, else ``default_max_tokens``
    (plus the thinking budget, which Anthropic counts inside ``max_tokens``).
    """
    max_tokens = request.max_tokens or default_max_tokens
    thinking_config = request.thinking
    if (
        request.max_tokens is None
        and thinking_config is not None
        and thinking_config.enabled
        and not thinking_config.adaptive
    ):
        max_tokens += _wanted_budget(thinking_config)
    body: dict[str, Any] = {"model": native_model, "max_tokens": max_tokens}
    same = request.source_dialect == NAME
    if request.system:
        if len(request.system) == 1 and request.system[0].cache_control is None:
            body["system"] = request.system[0].text
        else:
            body["system"] = [_text_block(p) for p in request.system]
    body["messages"] = _build_messages(request.messages)

    tools: list[dict[str, Any]] = [_build_tool(t) for t in request.tools]
    server = request.extras.get(SERVER_TOOLS_EXTRA) if same else None
    if isinstance(server, list):
        for entry in server:
            tools.insert(min(entry["index"], len(tools)), entry["tool"])
    if tools:
        body["tools"] = tools
        if request.tool_choice is not None:
            body["tool_choice"] = _build_tool_choice(request.tool_choice)

    thinking = _build_thinking(thinking_config, max_tokens)
    if thinking is not None:
        body["thinking"] = thinking
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.top_k is not None:
        body["top_k"] = request.top_k
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.stream:
        body["stream"] = True

    metadata: dict[str, Any] = dict(request.metadata) if same else {}
    if request.user is not None:
        metadata["user_id"] = request.user
    if metadata:
        body["metadata"] = metadata

    output_config: dict[str, Any] = {}
    if same and isinstance(request.extras.get("output_config"), dict):
        output_config.update(request.extras["output_config"])
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": fmt.schema}
    elif fmt is not None and fmt.type == "json_object":
        log.debug("anthropic: no JSON mode; dropping response_format json_object")
    if output_config:
        body["output_config"] = output_config

    dropped = [
        name
        for name in ("seed", "n", "presence_penalty", "frequency_penalty")
        if getattr(request, name) is not None
    ]
    if same:
        for key, value in request.extras.items():
            if key not in body and key != SERVER_TOOLS_EXTRA and key != "output_config":
                body[key] = value
    else:
        dropped.extend(request.extras)
        if request.metadata:
            dropped.append("metadata")
    if dropped:
        log.debug("anthropic: fields with no Anthropic counterpart dropped: %s", ", ".join(dropped))
    return body


def _build_tool(tool: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = (
        tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
    )
    if tool.strict:
        out["strict"] = True
    if tool.cache_control is not None:
        out["cache_control"] = tool.cache_control
    return out


_TOOL_CHOICE_TO_WIRE = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}


def _build_tool_choice(choice: ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _TOOL_CHOICE_TO_WIRE[choice.mode]}
    if choice.mode == "tool":
        out["name"] = choice.name
    if choice.parallel is not None and choice.mode != "none":
        out["disable_parallel_tool_use"] = not choice.parallel
    return out


def _wanted_budget(config: ThinkingConfig) -> int:
    if config.budget_tokens is not None:
        return config.budget_tokens
    return BUDGET_FOR_EFFORT.get(config.effort or "medium", BUDGET_FOR_EFFORT["medium"])


def _build_thinking(config: ThinkingConfig | None, max_tokens: int) -> dict[str, Any] | None:
    if config is None:
        return None
    if not config.enabled:
        return {"type": "disabled"}
    if config.adaptive:
        return {"type": "adaptive"}
    budget = _wanted_budget(config)
    # Anthropic wants MIN_THINKING_BUDGET <= budget < max_tokens.
    budget = min(max(budget, MIN_THINKING_BUDGET), max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        log.debug("anthropic: max_tokens %d too small for thinking; thinking disabled", max_tokens)
        return None
    return {"type": "enabled", "budget_tokens": budget}


def _source(media_type: str | None, data: str | None, url: str | None) -> dict[str, Any] | None:
    if data is not None:
        return {
            "type": "base64",
            "media_type": media_type or "application/octet-stream",
            "data": data,
        }
    if url is None:
        return None
    if url.startswith("data:"):
        header, _, payload = url[5:].partition(",")
        media, _, encoding = header.partition(";")
        if encoding == "base64":
            return {"type": "base64", "media_type": media, "data": payload}
    return {"type": "url", "url": url}


def _request_block(part: ContentPart) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return _text_block(part) if part.text else None
    if isinstance(part, ImagePart):
        source = _source(part.media_type, part.data, part.url)
        return {"type": "image", "source": source} if source is not None else None
    if isinstance(part, DocumentPart):
        return _document_block(part)
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": part.id,
            "name": part.name,
            "input": _tool_input(part.arguments),
        }
    if isinstance(part, ToolResultPart):
        out: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
        content = [b for b in map(_request_block, part.content) if b is not None]
        if content:
            out["content"] = content
        if part.is_error:
            out["is_error"] = True
        return out
    # ThinkingPart: only Anthropic's own, and only with what Anthropic needs to verify it.
    if part.origin != FAMILY:
        return None
    if part.redacted is not None:
        return {"type": "redacted_thinking", "data": part.redacted}
    if part.signature:
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    return None


def _document_block(part: DocumentPart) -> dict[str, Any] | None:
    source: dict[str, Any] | None
    if part.data is not None and part.media_type == "text/plain":
        try:
            text = base64.b64decode(part.data, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            text = part.data
        source = {"type": "text", "media_type": "text/plain", "data": text}
    else:
        source = _source(part.media_type or "application/pdf", part.data, part.url)
    if source is None:
        return None
    out: dict[str, Any] = {"type": "document", "source": source}
    if part.filename is not None:
        out["title"] = part.filename
    return out


def _build_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Canonical messages → Anthropic turns. A run of TOOL messages and the USER message right
    after it share one user turn, results first, as Anthropic requires."""
    out: list[dict[str, Any]] = []
    tool_turn: dict[str, Any] | None = None  # the user turn collecting tool results
    for message in messages:
        blocks = [b for b in map(_request_block, message.content) if b is not None]
        if not blocks:
            log.debug(
                "anthropic: dropping a %s message with no sendable content", message.role.value
            )
            continue
        if tool_turn is not None and message.role in (Role.TOOL, Role.USER):
            tool_turn["content"].extend(blocks)
        else:
            out.append({"role": ROLE_TO_WIRE[message.role], "content": blocks})
        tool_turn = out[-1] if message.role is Role.TOOL else None
    return out


# =========================================================================== upstream side: parse


def _content_part(block: dict[str, Any]) -> ContentPart | None:
    kind = block.get("type")
    if kind == "text":
        return TextPart(block.get("text") or "")
    if kind == "tool_use":
        return ToolCallPart(
            str(block.get("id", "")),
            str(block.get("name", "")),
            _json_text(block.get("input") or {}),
        )
    if kind == "thinking":
        origin, signature = _unwrap_signature(block.get("signature"))
        # Unsigned thinking (some compatible servers) has no family that could verify it.
        return ThinkingPart(text=block.get("thinking") or "", signature=signature, origin=origin)
    if kind == "redacted_thinking":
        origin, data = _unwrap_signature(block.get("data"))
        return ThinkingPart(redacted=data or "", origin=origin or FAMILY)
    log.warning("anthropic: dropping response block of type %r", kind)
    return None


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


def parse_response(body: dict[str, Any]) -> Response:
    """An upstream Messages body → :class:`Response`. An error body (even in a 200) raises."""
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.UPSTREAM, "upstream response is not a JSON object")
    if body.get("type") == "error":
        raise _error_from_object(body, None)
    content = body.get("content")
    if not isinstance(content, list):
        raise GatewayError(ErrorKind.UPSTREAM, "upstream response has no content list")
    parts = [p for p in (_content_part(b) for b in content if isinstance(b, dict)) if p is not None]
    usage = body.get("usage")
    return Response(
        id=str(body.get("id", "")),
        model=str(body.get("model", "")),
        content=parts,
        stop_reason=STOP_REASON_FROM_WIRE.get(
            body.get("stop_reason") or "end_turn", StopReason.END_TURN
        ),
        stop_sequence=body.get("stop_sequence"),
        usage=_usage_from_wire(usage) if isinstance(usage, dict) else Usage(),
    )


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


class AnthropicStreamParser:
    """Anthropic SSE events → canonical stream events (upstream side)."""

    def __init__(self) -> None:
        self._raw_usage: dict[str, Any] = {}
        self._stop_reason = StopReason.END_TURN
        self._stop_sequence: str | None = None
        self._ignored: set[int] = set()
        self._done = False

    def _usage(self, raw: object) -> Usage | None:
        if not isinstance(raw, dict):
            return None
        self._raw_usage.update({k: v for k, v in raw.items() if v is not None})
        return _usage_from_wire(self._raw_usage)

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self._done:
            return []
        try:
            obj = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            self._done = True
            return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "malformed upstream stream event"))]
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type") or event.event
        if kind == "content_block_delta":
            return self._block_delta(obj)
        if kind == "content_block_start":
            return self._block_start(obj)
        if kind == "content_block_stop":
            index = obj.get("index", 0)
            return [] if index in self._ignored else [BlockStop(index)]
        if kind == "message_start":
            message = obj.get("message") or {}
            return [
                MessageStart(
                    id=str(message.get("id", "")),
                    model=str(message.get("model", "")),
                    usage=self._usage(message.get("usage")),
                )
            ]
        if kind == "message_delta":
            delta = obj.get("delta") or {}
            reason = delta.get("stop_reason")
            if reason:
                self._stop_reason = STOP_REASON_FROM_WIRE.get(reason, StopReason.END_TURN)
            self._stop_sequence = delta.get("stop_sequence")
            usage = self._usage(obj.get("usage"))
            return [UsageEvent(usage)] if usage is not None else []
        if kind == "message_stop":
            self._done = True
            return [MessageStop(self._stop_reason, self._stop_sequence)]
        if kind == "error":
            self._done = True
            return [ErrorEvent(_error_from_object(obj, None))]
        return []  # ping and event types added later

    def _block_start(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = obj.get("index", 0)
        block = obj.get("content_block") or {}
        kind = block.get("type")
        if kind == "text":
            out: list[StreamEvent] = [TextStart(index)]
            if block.get("text"):
                out.append(TextDelta(index, block["text"]))
            return out
        if kind == "tool_use":
            out = [ToolCallStart(index, str(block.get("id", "")), str(block.get("name", "")))]
            if block.get("input"):
                out.append(ToolCallDelta(index, _json_text(block["input"])))
            return out
        if kind == "thinking":
            out = [ThinkingStart(index)]
            if block.get("thinking") or block.get("signature"):
                origin, signature = _unwrap_signature(block.get("signature"))
                out.append(
                    ThinkingDelta(index, block.get("thinking") or "", signature, origin or FAMILY)
                )
            return out
        if kind == "redacted_thinking":
            return [ThinkingStart(index, redacted=_unwrap_signature(block.get("data"))[1] or "")]
        log.debug("anthropic: ignoring streamed block of type %r", kind)
        self._ignored.add(index)
        return []

    def _block_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = obj.get("index", 0)
        if index in self._ignored:
            return []
        delta = obj.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(index, delta.get("text", ""))]
        if kind == "input_json_delta":
            fragment = delta.get("partial_json", "")
            return [ToolCallDelta(index, fragment)] if fragment else []
        if kind == "thinking_delta":
            return [ThinkingDelta(index, text=delta.get("thinking", ""), origin=FAMILY)]
        if kind == "signature_delta":
            # Another relaygate upstream may hand us a wrapped foreign signature.
            origin, signature = _unwrap_signature(delta.get("signature"))
            return [ThinkingDelta(index, signature=signature, origin=origin or FAMILY)]
        return []  # citations_delta and friends have no canonical form

    def finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "stream ended before completion"))]


def make_parser() -> AnthropicStreamParser:
    return AnthropicStreamParser()


__all__ = [
    "BUDGET_FOR_EFFORT",
    "CONTENT_TYPE_STREAM",
    "DEFAULT_MAX_TOKENS",
    "ERROR_TYPE_FOR_KIND",
    "FAMILY",
    "KIND_FOR_ERROR_TYPE",
    "NAME",
    "ROLE_FROM_WIRE",
    "ROLE_TO_WIRE",
    "SERVER_TOOLS_EXTRA",
    "STOP_REASON_FROM_WIRE",
    "STOP_REASON_TO_WIRE",
    "AnthropicStreamParser",
    "AnthropicStreamRenderer",
    "AnthropicStreamWatch",
    "build_request",
    "count_tokens_request",
    "make_parser",
    "make_renderer",
    "make_watch",
    "parse_error",
    "parse_request",
    "parse_response",
    "render_count_tokens",
    "render_error",
    "render_models",
    "render_response",
]
