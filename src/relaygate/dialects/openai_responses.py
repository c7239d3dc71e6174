"""OpenAI Responses (``POST /v1/responses``) ↔ canonical.

Client side parses Responses bodies (``input`` as a string or an item list, ``instructions``,
function and hosted tools, ``reasoning``, ``text.format``) and renders Response objects, the
``response.*`` SSE sequence, OpenAI error bodies and the model list. Upstream side builds
Responses bodies for ``openai`` / ``custom-openai-responses-compatible`` backends and reads
their answers back.

What has no canonical counterpart is kept in ``Request.extras`` (tagged by ``source_dialect``)
so a Responses client talking to a Responses upstream loses nothing; internal keys start with
``_``: ``_items`` (input items such as ``item_reference`` or ``local_shell_call``, with their
position), ``_parts`` (content parts such as ``file_id`` images), ``_tools`` (hosted tools such
as ``web_search``) and ``_tool_choice`` (a non-function tool choice).

Reasoning items become :class:`ThinkingPart` with ``origin="openai"``: summary text as ``text``,
``encrypted_content`` as ``redacted``. In a stream the encrypted content is only final in
``response.output_item.done`` (the spec warns the ``added`` copy may be incomplete), so the
parser carries it as ``ThinkingDelta.signature``; both fields are read back when building.
Only reasoning that carries encrypted content is sent upstream (an id alone points at state
stored under one OpenAI organisation).

Thinking signed by another family (an Anthropic signature, a redacted block) reaches a
Responses client as a reasoning item whose ``encrypted_content`` is a relaygate envelope
(``relaygate.v1.`` + base64url JSON of origin, signature, redacted). When the client sends it
back, it is decoded to the original family's part, so a Responses client can drive Claude
through tool loops; the envelope is never sent to OpenAI and no signature is made up.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any, Literal

import orjson

from relaygate.canonical import (
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
from relaygate.dialects import OPENAI_RESPONSES
from relaygate.dialects.sse import SSEEvent, encode

NAME = OPENAI_RESPONSES
CONTENT_TYPE_STREAM = "text/event-stream"
ORIGIN = "openai"  # the provider family that signs reasoning items

log = logging.getLogger(__name__)

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

# --------------------------------------------------------------------------- small validators


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _req_str(obj: dict[str, Any], key: str, param: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        if value is None:
            raise invalid(f"Missing required parameter: '{param}'.", param)
        raise invalid(
            f"Invalid type for '{param}': expected a string, got {_type_name(value)}.", param
        )
    return value


def _opt_str(obj: dict[str, Any], key: str, param: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid(
            f"Invalid type for '{param}': expected a string, got {_type_name(value)}.", param
        )
    return value


def _opt_bool(obj: dict[str, Any], key: str, param: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid(
            f"Invalid type for '{param}': expected a boolean, got {_type_name(value)}.", param
        )
    return value


def _opt_num(obj: dict[str, Any], key: str, param: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(
            f"Invalid type for '{param}': expected a number, got {_type_name(value)}.", param
        )
    return value


def _opt_dict(obj: dict[str, Any], key: str, param: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise invalid(
            f"Invalid type for '{param}': expected an object, got {_type_name(value)}.", param
        )
    return value


ENVELOPE_PREFIX = "relaygate.v1."


def _envelope(origin: str | None, signature: str | None, redacted: str | None) -> str:
    payload = orjson.dumps({"origin": origin, "signature": signature, "redacted": redacted})
    return ENVELOPE_PREFIX + base64.urlsafe_b64encode(payload).decode()


def _thinking(text: str, encrypted: str | None, item_id: str | None) -> ThinkingPart:
    """A reasoning item → :class:`ThinkingPart`, opening relaygate envelopes."""
    if encrypted and encrypted.startswith(ENVELOPE_PREFIX):
        try:
            data = orjson.loads(base64.urlsafe_b64decode(encrypted[len(ENVELOPE_PREFIX) :]))
        except (binascii.Error, ValueError):
            data = None
        if isinstance(data, dict):

            def field(key: str) -> str | None:
                value = data.get(key)
                return value if isinstance(value, str) else None

            return ThinkingPart(
                text=text,
                signature=field("signature"),
                redacted=field("redacted"),
                origin=field("origin"),
            )
        return ThinkingPart(text=text)  # a damaged envelope: keep the text, trust nothing
    return ThinkingPart(text=text, redacted=encrypted, origin=ORIGIN, id=item_id)


def _encrypted_for(origin: str | None, signature: str | None, redacted: str | None) -> str | None:
    """What goes in ``encrypted_content`` for a thinking part rendered to a Responses client."""
    if origin == ORIGIN:
        return signature or redacted
    if signature or redacted:
        return _envelope(origin, signature, redacted)
    return None


def _split_data_url(url: str) -> tuple[str | None, str]:
    """``data:image/png;base64,AAA`` → (``image/png``, ``AAA``)."""
    head, _, data = url.partition(",")
    media_type = head[5:].split(";", 1)[0] or None
    return media_type, data


# --------------------------------------------------------------------------- client side: requests


def parse_request(body: dict[str, Any]) -> Request:
    """A ``POST /v1/responses`` body → :class:`Request` (raises ``invalid`` naming the field)."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    model = _req_str(body, "model", "model")
    extras = {k: v for k, v in body.items() if k not in _KNOWN_FIELDS}
    req = Request(model=model, messages=[], extras=extras, source_dialect=NAME)

    instructions = _opt_str(body, "instructions", "instructions")
    if instructions:
        req.system.append(TextPart(instructions))

    raw_input = body.get("input")
    if isinstance(raw_input, str):
        req.messages.append(Message(Role.USER, [TextPart(raw_input)]))
    elif isinstance(raw_input, list):
        _parse_input(raw_input, req)
    elif raw_input is not None:
        raise invalid(
            f"Invalid type for 'input': expected a string or an array, got {_type_name(raw_input)}.",
            "input",
        )
    elif not any(k in body for k in ("previous_response_id", "conversation", "prompt")):
        raise invalid("Missing required parameter: 'input'.", "input")

    _parse_tools(body, req)
    _parse_tool_choice(body, req)

    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise invalid(
                "Invalid 'max_output_tokens': expected a positive integer.", "max_output_tokens"
            )
        req.max_tokens = max_tokens
    req.temperature = _opt_num(body, "temperature", "temperature")
    req.top_p = _opt_num(body, "top_p", "top_p")
    req.stream = bool(_opt_bool(body, "stream", "stream"))
    req.user = _opt_str(body, "user", "user")
    metadata = _opt_dict(body, "metadata", "metadata")
    if metadata:
        req.metadata = dict(metadata)

    reasoning = _opt_dict(body, "reasoning", "reasoning")
    if reasoning is not None:
        effort = _opt_str(reasoning, "effort", "reasoning.effort")
        req.thinking = ThinkingConfig(enabled=effort != "none", effort=effort)
        rest = {k: v for k, v in reasoning.items() if k != "effort"}
        if rest:  # summary, generate_summary: no canonical counterpart
            extras["reasoning"] = rest

    text = _opt_dict(body, "text", "text")
    if text is not None:
        fmt = _opt_dict(text, "format", "text.format")
        if fmt is not None:
            req.response_format = _parse_format(fmt)
        rest = {k: v for k, v in text.items() if k != "format"}
        if rest:  # verbosity
            extras["text"] = rest
    return req


def _parse_format(fmt: dict[str, Any]) -> ResponseFormat:
    kind = fmt.get("type")
    if not isinstance(kind, str) or kind not in _FORMAT_TYPES:
        raise invalid(
            "Invalid 'text.format.type': expected one of text, json_object, json_schema.",
            "text.format.type",
        )
    if kind != "json_schema":
        return ResponseFormat(type=_FORMAT_TYPES[kind])
    name = _req_str(fmt, "name", "text.format.name")
    schema = _opt_dict(fmt, "schema", "text.format.schema")
    if schema is None:
        raise invalid("Missing required parameter: 'text.format.schema'.", "text.format.schema")
    strict = _opt_bool(fmt, "strict", "text.format.strict")
    return ResponseFormat(type="json_schema", schema=schema, name=name, strict=strict)


def _parse_input(items: list[Any], req: Request) -> None:
    messages = req.messages
    kept_items: list[dict[str, Any]] = []
    kept_parts: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    # Consecutive assistant-side items (reasoning, message, function_call) form one canonical
    # assistant turn, as one Responses output does; a kept item breaks the run to keep order.
    joinable = True
    for i, item in enumerate(items):
        p = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"Invalid type for '{p}': expected an object, got {_type_name(item)}.", p)
        kind = item.get("type", "message" if "role" in item else None)
        last = messages[-1] if messages and joinable else None
        if kind == "message":
            role = _req_str(item, "role", f"{p}.role")
            parts, extra_parts = _parse_content(item.get("content"), f"{p}.content")
            if role in SYSTEM_ROLES:
                req.system.extend(x for x in parts if isinstance(x, TextPart))
                if extra_parts or any(not isinstance(x, TextPart) for x in parts):
                    log.debug("dropped non-text parts of a %s message", role)
            elif role in ROLE_FROM_WIRE:
                wire_role = ROLE_FROM_WIRE[role]
                if (
                    wire_role is Role.ASSISTANT
                    and last is not None
                    and last.role is Role.ASSISTANT
                    and isinstance(last.content[-1], ThinkingPart)
                ):
                    last.content.extend(parts)
                else:
                    messages.append(Message(wire_role, parts))
                kept_parts.extend({"message": len(messages) - 1, "part": x} for x in extra_parts)
            else:
                raise invalid(f"Invalid value for '{p}.role': {role!r}.", f"{p}.role")
            joinable = True
        elif kind == "function_call":
            call_id = _req_str(item, "call_id", f"{p}.call_id")
            name = _req_str(item, "name", f"{p}.name")
            arguments = _req_str(item, "arguments", f"{p}.arguments")
            call_names[call_id] = name
            call = ToolCallPart(call_id, name, arguments)
            if last is not None and last.role is Role.ASSISTANT:
                last.content.append(call)
            else:
                messages.append(Message(Role.ASSISTANT, [call]))
            joinable = True
        elif kind == "function_call_output":
            call_id = _req_str(item, "call_id", f"{p}.call_id")
            output = _parse_tool_output(item.get("output"), f"{p}.output")
            result = ToolResultPart(call_id, output, name=call_names.get(call_id))
            if last is not None and last.role is Role.TOOL:
                last.content.append(result)
            else:
                messages.append(Message(Role.TOOL, [result]))
            joinable = True
        elif kind == "reasoning":
            thinking = _parse_reasoning(item, p)
            if last is not None and last.role is Role.ASSISTANT:
                last.content.append(thinking)
            else:
                messages.append(Message(Role.ASSISTANT, [thinking]))
            joinable = True
        elif isinstance(kind, str):
            # item_reference, custom_tool_call(_output), local_shell_call, web_search_call, …
            kept_items.append({"at": len(messages), "item": item})
            joinable = False
        else:
            raise invalid(f"Missing required parameter: '{p}.type'.", f"{p}.type")
    if kept_items:
        req.extras["_items"] = kept_items
    if kept_parts:
        req.extras["_parts"] = kept_parts


def _parse_content(content: Any, p: str) -> tuple[list[ContentPart], list[dict[str, Any]]]:
    if isinstance(content, str):
        return [TextPart(content)], []
    if not isinstance(content, list):
        if content is None:
            raise invalid(f"Missing required parameter: '{p}'.", p)
        raise invalid(
            f"Invalid type for '{p}': expected a string or an array, got {_type_name(content)}.", p
        )
    parts: list[ContentPart] = []
    kept: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        pj = f"{p}[{j}]"
        if not isinstance(part, dict):
            raise invalid(
                f"Invalid type for '{pj}': expected an object, got {_type_name(part)}.", pj
            )
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(TextPart(_req_str(part, "text", f"{pj}.text")))
        elif kind == "refusal":
            parts.append(TextPart(_req_str(part, "refusal", f"{pj}.refusal")))
        elif kind == "input_image":
            url = _opt_str(part, "image_url", f"{pj}.image_url")
            detail = _opt_str(part, "detail", f"{pj}.detail")
            if url is not None and url.startswith("data:"):
                media_type, data = _split_data_url(url)
                parts.append(ImagePart(media_type=media_type, data=data, detail=detail))
            elif url is not None:
                parts.append(ImagePart(url=url, detail=detail))
            elif isinstance(part.get("file_id"), str):
                kept.append(part)
            else:
                raise invalid(f"Missing required parameter: '{pj}.image_url'.", f"{pj}.image_url")
        elif kind == "input_file":
            filename = _opt_str(part, "filename", f"{pj}.filename")
            file_data = _opt_str(part, "file_data", f"{pj}.file_data")
            file_url = _opt_str(part, "file_url", f"{pj}.file_url")
            if file_data is not None:
                media_type, data = (
                    _split_data_url(file_data)
                    if file_data.startswith("data:")
                    else (None, file_data)
                )
                parts.append(DocumentPart(media_type=media_type, data=data, filename=filename))
            elif file_url is not None:
                parts.append(DocumentPart(url=file_url, filename=filename))
            else:  # file_id: only the provider that issued it can resolve it
                kept.append(part)
        elif isinstance(kind, str):
            kept.append(part)
        else:
            raise invalid(f"Missing required parameter: '{pj}.type'.", f"{pj}.type")
    return parts, kept


def _parse_tool_output(output: Any, p: str) -> list[TextPart | ImagePart]:
    if isinstance(output, str):
        return [TextPart(output)]
    if not isinstance(output, list):
        if output is None:
            raise invalid(f"Missing required parameter: '{p}'.", p)
        raise invalid(
            f"Invalid type for '{p}': expected a string or an array, got {_type_name(output)}.", p
        )
    parts, kept = _parse_content(output, p)
    out = [x for x in parts if isinstance(x, TextPart | ImagePart)]
    if kept or len(out) != len(parts):
        log.debug("dropped file parts of a function_call_output")
    return out


def _parse_reasoning(item: dict[str, Any], p: str) -> ThinkingPart:
    texts: list[str] = []
    summary = item.get("summary")
    if summary is not None and not isinstance(summary, list):
        raise invalid(f"Invalid type for '{p}.summary': expected an array.", f"{p}.summary")
    for j, s in enumerate(summary or []):
        if not isinstance(s, dict):
            raise invalid(
                f"Invalid type for '{p}.summary[{j}]': expected an object.", f"{p}.summary[{j}]"
            )
        texts.append(_req_str(s, "text", f"{p}.summary[{j}].text"))
    if not texts:  # open-weight models return raw reasoning_text content instead
        for c in item.get("content") or []:
            if isinstance(c, dict) and isinstance(c.get("text"), str):
                texts.append(c["text"])
    return _thinking(
        "\n\n".join(texts),
        _opt_str(item, "encrypted_content", f"{p}.encrypted_content"),
        _opt_str(item, "id", f"{p}.id"),
    )


def _parse_tools(body: dict[str, Any], req: Request) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid(
            f"Invalid type for 'tools': expected an array, got {_type_name(tools)}.", "tools"
        )
    hosted: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        p = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(f"Invalid type for '{p}': expected an object, got {_type_name(tool)}.", p)
        kind = tool.get("type")
        if kind == "function":
            req.tools.append(
                ToolSpec(
                    name=_req_str(tool, "name", f"{p}.name"),
                    description=_opt_str(tool, "description", f"{p}.description"),
                    parameters=_opt_dict(tool, "parameters", f"{p}.parameters"),
                    strict=_opt_bool(tool, "strict", f"{p}.strict"),
                )
            )
        elif isinstance(kind, str):  # web_search, namespace, local_shell, custom, file_search, …
            hosted.append(tool)
        else:
            raise invalid(f"Missing required parameter: '{p}.type'.", f"{p}.type")
    if hosted:
        req.extras["_tools"] = hosted


def _parse_tool_choice(body: dict[str, Any], req: Request) -> None:
    raw = body.get("tool_choice")
    choice: ToolChoice | None = None
    if isinstance(raw, str):
        mode = _CHOICE_MODES.get(raw)
        if mode is None:
            raise invalid(f"Invalid value for 'tool_choice': {raw!r}.", "tool_choice")
        choice = ToolChoice(mode=mode)
    elif isinstance(raw, dict):
        kind = raw.get("type")
        if kind == "function":
            choice = ToolChoice(mode="tool", name=_req_str(raw, "name", "tool_choice.name"))
        elif isinstance(kind, str):  # allowed_tools, hosted tools, custom, mcp
            req.extras["_tool_choice"] = raw
            choice = ToolChoice(mode=_CHOICE_MODES.get(str(raw.get("mode")), "auto"))
        else:
            raise invalid("Missing required parameter: 'tool_choice.type'.", "tool_choice.type")
    elif raw is not None:
        raise invalid(
            f"Invalid type for 'tool_choice': expected a string or an object, got {_type_name(raw)}.",
            "tool_choice",
        )
    parallel = _opt_bool(body, "parallel_tool_calls", "parallel_tool_calls")
    if parallel is not None:
        choice = choice or ToolChoice()
        choice.parallel = parallel
    req.tool_choice = choice


# --------------------------------------------------------------------------- upstream side: requests


def build_request(request: Request, native_model: str) -> dict[str, Any]:
    """:class:`Request` → a Responses body. Fields with no counterpart are dropped and logged."""
    same = request.source_dialect == NAME
    extras = request.extras if same else {}
    dropped: list[str] = []
    body: dict[str, Any] = {"model": native_model}
    if request.system:
        body["instructions"] = "\n\n".join(p.text for p in request.system)

    items: list[dict[str, Any]] = []
    kept_items: list[dict[str, Any]] = extras.get("_items") or []
    kept_parts: dict[int, list[dict[str, Any]]] = {}
    for entry in extras.get("_parts") or []:
        kept_parts.setdefault(entry["message"], []).append(entry["part"])
    k = 0
    for n, message in enumerate(request.messages):
        while k < len(kept_items) and kept_items[k]["at"] <= n:
            items.append(kept_items[k]["item"])
            k += 1
        _build_message(message, items, kept_parts.get(n), dropped)
    items.extend(entry["item"] for entry in kept_items[k:])
    body["input"] = items

    tools: list[dict[str, Any]] = []
    for spec in request.tools:
        tool: dict[str, Any] = {"type": "function", "name": spec.name}
        if spec.description is not None:
            tool["description"] = spec.description
        tool["parameters"] = spec.parameters if spec.parameters is not None else _EMPTY_SCHEMA
        # Responses defaults ``strict`` to true, which rejects most schemas written for other
        # dialects; only a Responses client's own omission keeps that default.
        if spec.strict is not None or not same:
            tool["strict"] = bool(spec.strict)
        if spec.cache_control is not None:
            dropped.append("tools.cache_control")
        tools.append(tool)
    tools.extend(extras.get("_tools") or [])
    if tools:
        body["tools"] = tools
        choice = request.tool_choice
        if "_tool_choice" in extras:
            body["tool_choice"] = extras["_tool_choice"]
        elif choice is not None:
            body["tool_choice"] = (
                {"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode
            )
        if choice is not None and choice.parallel is not None:
            body["parallel_tool_calls"] = choice.parallel
    elif request.tool_choice is not None:
        dropped.append("tool_choice")

    if request.max_tokens is not None:
        body["max_output_tokens"] = max(request.max_tokens, MIN_OUTPUT_TOKENS)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stream:
        body["stream"] = True
    if request.user is not None:
        body["user"] = request.user
    if request.metadata:
        body["metadata"] = {k2: v for k2, v in request.metadata.items() if isinstance(v, str)}
        if len(body["metadata"]) != len(request.metadata):
            dropped.append("metadata (non-string values)")

    fmt = request.response_format
    if fmt is not None:
        wire: dict[str, Any] = {"type": fmt.type}
        if fmt.type == "json_schema":
            wire["name"] = fmt.name or "response"
            wire["schema"] = fmt.schema if fmt.schema is not None else _EMPTY_SCHEMA
            if fmt.strict is not None:
                wire["strict"] = fmt.strict
        body["text"] = {"format": wire}

    thinking = request.thinking
    if thinking is not None:
        effort = thinking.effort
        if effort is None and thinking.enabled and thinking.budget_tokens:
            effort = next(
                (e for bound, e in EFFORT_FOR_BUDGET if thinking.budget_tokens <= bound),
                EFFORT_ABOVE_BUDGETS,
            )
        if thinking.enabled or effort is not None:
            reasoning: dict[str, Any] = {"effort": effort} if effort is not None else {}
            if not same and thinking.enabled:
                # A client of another dialect expects its reasoning back as text, and carries
                # state itself: ask for summaries and the encrypted reasoning, store nothing.
                reasoning["summary"] = "auto"
                body["include"] = ["reasoning.encrypted_content"]
                body["store"] = False
            body["reasoning"] = reasoning

    for name, value in (
        ("top_k", request.top_k),
        ("seed", request.seed),
        ("n", request.n),
        ("presence_penalty", request.presence_penalty),
        ("frequency_penalty", request.frequency_penalty),
    ):
        if value is not None:
            dropped.append(name)
    if request.stop:
        dropped.append("stop")

    if same:
        for key, value in extras.items():
            if key.startswith("_"):
                continue
            if key not in body:
                body[key] = value
            elif isinstance(value, dict) and isinstance(body[key], dict):
                body[key] = {**value, **body[key]}
    elif request.extras:
        dropped.extend(f"extras.{key}" for key in request.extras)
    if dropped:
        log.debug("openai-responses request: dropped %s", ", ".join(dropped))
    return body


def _build_message(
    message: Message,
    items: list[dict[str, Any]],
    extra_parts: list[dict[str, Any]] | None,
    dropped: list[str],
) -> None:
    if message.role is Role.ASSISTANT:
        _build_assistant(message, items, dropped)
        return
    content: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            content.append({"type": "input_text", "text": part.text})
            if part.cache_control is not None:
                dropped.append("cache_control")
        elif isinstance(part, ImagePart):
            content.append(_image(part))
        elif isinstance(part, DocumentPart):
            content.append(_document(part))
        elif isinstance(part, ToolResultPart):
            items.append(_tool_output(part, dropped))
        else:
            dropped.append(f"{part.type} part in a {message.role.value} message")
    if extra_parts:
        content.extend(extra_parts)
    if message.name is not None:
        dropped.append("message.name")
    if content or (
        message.role is Role.USER
        and not any(isinstance(x, ToolResultPart) for x in message.content)
    ):
        items.append({"type": "message", "role": "user", "content": content})


def _build_assistant(message: Message, items: list[dict[str, Any]], dropped: list[str]) -> None:
    open_msg: dict[str, Any] | None = None
    for part in message.content:
        if isinstance(part, TextPart):
            if open_msg is None:
                open_msg = {"type": "message", "role": "assistant", "content": []}
                items.append(open_msg)
            open_msg["content"].append({"type": "output_text", "text": part.text})
            continue
        open_msg = None
        if isinstance(part, ToolCallPart):
            items.append(
                {
                    "type": "function_call",
                    "call_id": part.id,
                    "name": part.name,
                    "arguments": part.arguments,
                }
            )
        elif isinstance(part, ThinkingPart):
            encrypted = part.redacted or part.signature
            # Only OpenAI's own reasoning goes back, and only with its encrypted content.
            if part.origin != ORIGIN or not encrypted:
                dropped.append(f"thinking part (origin {part.origin})")
                continue
            reasoning: dict[str, Any] = {"type": "reasoning"}
            if part.id:
                reasoning["id"] = part.id
            reasoning["summary"] = (
                [{"type": "summary_text", "text": part.text}] if part.text else []
            )
            reasoning["encrypted_content"] = encrypted
            items.append(reasoning)
        else:
            dropped.append(f"{part.type} part in an assistant message")


def _image(part: ImagePart) -> dict[str, Any]:
    url = (
        part.url
        if part.url is not None
        else f"data:{part.media_type or 'image/png'};base64,{part.data}"
    )
    return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}


def _document(part: DocumentPart) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "input_file"}
    if part.filename is not None:
        out["filename"] = part.filename
    if part.url is not None:
        out["file_url"] = part.url
    else:
        out["file_data"] = f"data:{part.media_type or 'application/pdf'};base64,{part.data}"
    return out


def _tool_output(part: ToolResultPart, dropped: list[str]) -> dict[str, Any]:
    output: str | list[dict[str, Any]]
    if not part.content:
        output = ""
    elif len(part.content) == 1 and isinstance(part.content[0], TextPart):
        output = part.content[0].text
    else:
        output = [
            {"type": "input_text", "text": x.text} if isinstance(x, TextPart) else _image(x)
            for x in part.content
        ]
    if part.is_error:
        dropped.append("tool_result.is_error")
    return {"type": "function_call_output", "call_id": part.tool_call_id, "output": output}


# --------------------------------------------------------------------------- responses (both sides)


def _usage_from(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    inp = raw.get("input_tokens", raw.get("prompt_tokens")) or 0
    out = raw.get("output_tokens", raw.get("completion_tokens")) or 0
    in_details = raw.get("input_tokens_details") or {}
    out_details = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=in_details.get("cached_tokens") or 0,
        cache_write_tokens=in_details.get("cache_write_tokens") or 0,
        reasoning_tokens=out_details.get("reasoning_tokens") or 0,
    )


def _usage_to(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _item_id(prefix: str, response_id: str, n: int) -> str:
    return f"{prefix}_{response_id.removeprefix('resp_')}_{n}"


def _reasoning_item(item_id: str, text: str, encrypted: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if encrypted:
        item["encrypted_content"] = encrypted
    return item


def _output_items(response_id: str, content: list[ContentPart]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    open_msg: dict[str, Any] | None = None
    for part in content:
        if isinstance(part, TextPart):
            if open_msg is None:
                open_msg = {
                    "id": _item_id("msg", response_id, len(items)),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [],
                }
                items.append(open_msg)
            open_msg["content"].append(
                {"type": "output_text", "text": part.text, "annotations": [], "logprobs": []}
            )
            continue
        open_msg = None
        if isinstance(part, ToolCallPart):
            items.append(
                {
                    "id": _item_id("fc", response_id, len(items)),
                    "type": "function_call",
                    "status": "completed",
                    "call_id": part.id,
                    "name": part.name,
                    "arguments": part.arguments,
                }
            )
        elif isinstance(part, ThinkingPart):
            encrypted = _encrypted_for(part.origin, part.signature, part.redacted)
            items.append(
                _reasoning_item(
                    part.id or _item_id("rs", response_id, len(items)), part.text, encrypted
                )
            )
        else:
            log.debug("openai-responses response: dropped %s part", part.type)
    return items


def response_items(response: Response) -> list[dict[str, Any]]:
    """The output items of ``response`` as they go into ``input`` on the next turn (the server
    keeps them for ``previous_response_id``)."""
    return _output_items(response.id, response.content)


def _response_object(
    response_id: str,
    model: str,
    created: int,
    output: list[dict[str, Any]],
    status: str,
    usage: Usage | None,
    incomplete: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    # Echoed request fields carry the defaults; the gateway does not replay the client's values.
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": _usage_to(usage) if usage is not None else None,
        "user": None,
        "metadata": {},
    }


def render_response(response: Response) -> bytes:
    """:class:`Response` → a Response object (what ``POST /v1/responses`` returns)."""
    incomplete = INCOMPLETE_FROM_STOP.get(response.stop_reason)
    return orjson.dumps(
        _response_object(
            response.id,
            response.model,
            response.created,
            _output_items(response.id, response.content),
            "incomplete" if incomplete else "completed",
            response.usage,
            incomplete,
        )
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


def parse_response(body: dict[str, Any]) -> Response:
    """An upstream Response object → :class:`Response` (a failed one raises its error)."""
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.UPSTREAM, "malformed upstream response: not an object")
    if body.get("status") == "failed" or ("output" not in body and "error" in body):
        raise _error_from(body.get("error"))
    output = body.get("output")
    if not isinstance(output, list):
        raise GatewayError(ErrorKind.UPSTREAM, "malformed upstream response: no output")
    content: list[ContentPart] = []
    calls = False
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for c in item.get("content") or []:
                if c.get("type") == "output_text":
                    content.append(TextPart(c.get("text") or ""))
                elif c.get("type") == "refusal":
                    content.append(TextPart(c.get("refusal") or ""))
        elif kind == "function_call":
            calls = True
            content.append(
                ToolCallPart(
                    str(item.get("call_id") or item.get("id") or ""),
                    str(item.get("name") or ""),
                    item.get("arguments") or "",
                )
            )
        elif kind == "reasoning":
            texts = [s.get("text") or "" for s in item.get("summary") or [] if isinstance(s, dict)]
            content.append(
                _thinking("\n\n".join(texts), item.get("encrypted_content") or None, item.get("id"))
            )
        else:
            log.debug("openai-responses response: dropped %s output item", kind)
    stop = StopReason.TOOL_USE if calls else StopReason.END_TURN
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        stop = STOP_FROM_INCOMPLETE.get(str(reason), StopReason.MAX_TOKENS)
    created = body.get("created_at")
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        stop_reason=stop,
        usage=_usage_from(body.get("usage")),
        created=int(created) if isinstance(created, int | float) else 0,
    )


# --------------------------------------------------------------------------- errors and models

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(sk|pk|rk|sess)-[A-Za-z0-9_\-*]{4,}"), r"\1-***"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "AIza***"),
    (re.compile(r"\b(Bearer\s+)\S+"), r"\1***"),
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


def render_models(models: list[ModelInfo]) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {
                    "id": m.id,
                    "object": "model",
                    "created": m.created,
                    "owned_by": m.owned_by or m.backend,
                }
                for m in models
            ],
        }
    )


# --------------------------------------------------------------------------- client side: streams


class _Open:
    """One canonical block being rendered as an output item."""

    __slots__ = (
        "call_id",
        "chunks",
        "item_id",
        "kind",
        "name",
        "origin",
        "output_index",
        "redacted",
        "signature",
    )

    def __init__(self, kind: str, output_index: int, item_id: str) -> None:
        self.kind = kind
        self.output_index = output_index
        self.item_id = item_id
        self.call_id = ""
        self.name = ""
        self.chunks: list[str] = []
        self.origin: str | None = None
        self.signature: str | None = None
        self.redacted: str | None = None


class StreamRenderer:
    """Canonical events → the Responses SSE sequence (``response.created`` … ``response.completed``).

    Output items keep their text so ``*.done`` events and the final response carry it whole,
    as the API does; nothing else is buffered.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = ""
        self.created = 0
        self.seq = 0
        self.started = False
        self.finished = False
        self.usage: Usage | None = None
        self.output: list[dict[str, Any] | None] = []
        self.blocks: dict[int, _Open] = {}

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        payload: dict[str, Any] = {"type": kind}  # type first, as the API writes it
        payload.update(fields)
        payload["sequence_number"] = self.seq
        self.seq += 1
        return encode(orjson.dumps(payload), kind)

    def _snapshot(
        self, status: str, incomplete: str | None = None, error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        done = [item for item in self.output if item is not None]
        return _response_object(
            self.id, self.model, self.created, done, status, self.usage, incomplete, error
        )

    def _start(self, event: MessageStart | None) -> bytes:
        self.started = True
        if event is not None:
            self.id = event.id or "resp_relaygate"
            self.model = self.model or event.model
            self.created = event.created
            if event.usage is not None:
                self.usage = Usage()
                self.usage.merge(event.usage)
        else:
            self.id = "resp_relaygate"
        snap = self._snapshot("in_progress")
        return self._event("response.created", {"response": snap}) + self._event(
            "response.in_progress", {"response": snap}
        )

    def feed(self, event: StreamEvent) -> bytes:
        if self.finished:
            return b""
        kind = event.kind
        out = (
            b"" if self.started or kind == "message_start" or kind == "error" else self._start(None)
        )
        if kind == "text_delta":
            assert isinstance(event, TextDelta)
            block = self.blocks.get(event.index)
            if block is None or not event.text:
                return out
            block.chunks.append(event.text)
            return out + self._event(
                "response.output_text.delta",
                {
                    "item_id": block.item_id,
                    "output_index": block.output_index,
                    "content_index": 0,
                    "delta": event.text,
                    "logprobs": [],
                },
            )
        if kind == "tool_call_delta":
            assert isinstance(event, ToolCallDelta)
            block = self.blocks.get(event.index)
            if block is None or not event.arguments:
                return out
            block.chunks.append(event.arguments)
            return out + self._event(
                "response.function_call_arguments.delta",
                {
                    "item_id": block.item_id,
                    "output_index": block.output_index,
                    "delta": event.arguments,
                },
            )
        if kind == "thinking_delta":
            assert isinstance(event, ThinkingDelta)
            return out + self._thinking_delta(event)
        if kind == "message_start":
            assert isinstance(event, MessageStart)
            return b"" if self.started else self._start(event)
        if kind == "text_start":
            assert isinstance(event, TextStart)
            block = self._open("message", "msg", event.index)
            item = {
                "id": block.item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            return (
                out
                + self._added(block, item)
                + self._event(
                    "response.content_part.added",
                    {
                        "item_id": block.item_id,
                        "output_index": block.output_index,
                        "content_index": 0,
                        "part": {
                            "type": "output_text",
                            "text": "",
                            "annotations": [],
                            "logprobs": [],
                        },
                    },
                )
            )
        if kind == "tool_call_start":
            assert isinstance(event, ToolCallStart)
            block = self._open("function_call", "fc", event.index)
            block.call_id, block.name = event.id, event.name
            item = {
                "id": block.item_id,
                "type": "function_call",
                "status": "in_progress",
                "call_id": event.id,
                "name": event.name,
                "arguments": "",
            }
            return out + self._added(block, item)
        if kind == "thinking_start":
            assert isinstance(event, ThinkingStart)
            block = self._open("reasoning", "rs", event.index)
            block.redacted = event.redacted
            return out + self._added(
                block, {"id": block.item_id, "type": "reasoning", "summary": []}
            )
        if kind == "block_stop":
            assert isinstance(event, BlockStop)
            return out + self._close(event.index)
        if kind == "usage":
            assert isinstance(event, UsageEvent)
            if self.usage is None:
                self.usage = Usage()
            self.usage.merge(event.usage)
            return out
        if kind == "message_stop":
            assert isinstance(event, MessageStop)
            for index in list(self.blocks):
                out += self._close(index)
            self.finished = True
            incomplete = INCOMPLETE_FROM_STOP.get(event.stop_reason)
            if incomplete:
                return out + self._event(
                    "response.incomplete", {"response": self._snapshot("incomplete", incomplete)}
                )
            return out + self._event(
                "response.completed", {"response": self._snapshot("completed")}
            )
        if kind == "error":
            assert isinstance(event, ErrorEvent)
            return out + self.error(event.error)
        return out

    def error(self, err: GatewayError) -> bytes:
        """``response.failed`` for a stream that broke after its first byte."""
        if self.finished:
            return b""
        out = b"" if self.started else self._start(None)
        self.finished = True
        failure = {
            "code": FAILED_CODE_FOR_KIND.get(err.kind, "server_error"),
            "message": err.message,
        }
        return out + self._event(
            "response.failed", {"response": self._snapshot("failed", error=failure)}
        )

    def _open(self, kind: str, prefix: str, index: int) -> _Open:
        output_index = len(self.output)
        self.output.append(None)
        block = _Open(kind, output_index, _item_id(prefix, self.id, output_index))
        self.blocks[index] = block
        return block

    def _added(self, block: _Open, item: dict[str, Any]) -> bytes:
        return self._event(
            "response.output_item.added", {"output_index": block.output_index, "item": item}
        )

    def _thinking_delta(self, event: ThinkingDelta) -> bytes:
        block = self.blocks.get(event.index)
        if block is None:
            return b""
        if event.origin is not None:
            block.origin = event.origin
        if event.signature:
            block.signature = event.signature
        if not event.text:
            return b""
        out = b""
        ids = {"item_id": block.item_id, "output_index": block.output_index, "summary_index": 0}
        if not block.chunks:
            out = self._event(
                "response.reasoning_summary_part.added",
                {**ids, "part": {"type": "summary_text", "text": ""}},
            )
        block.chunks.append(event.text)
        return out + self._event(
            "response.reasoning_summary_text.delta", {**ids, "delta": event.text}
        )

    def _close(self, index: int) -> bytes:
        block = self.blocks.pop(index, None)
        if block is None:
            return b""
        text = "".join(block.chunks)
        ids: dict[str, Any] = {"item_id": block.item_id, "output_index": block.output_index}
        out = b""
        item: dict[str, Any]
        if block.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out = self._event(
                "response.output_text.done",
                {**ids, "content_index": 0, "text": text, "logprobs": []},
            )
            out += self._event(
                "response.content_part.done", {**ids, "content_index": 0, "part": part}
            )
            item = {
                "id": block.item_id,
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        elif block.kind == "function_call":
            out = self._event("response.function_call_arguments.done", {**ids, "arguments": text})
            item = {
                "id": block.item_id,
                "type": "function_call",
                "status": "completed",
                "call_id": block.call_id,
                "name": block.name,
                "arguments": text,
            }
        else:
            if text:
                part = {"type": "summary_text", "text": text}
                out = self._event(
                    "response.reasoning_summary_text.done",
                    {**ids, "summary_index": 0, "text": text},
                )
                out += self._event(
                    "response.reasoning_summary_part.done",
                    {**ids, "summary_index": 0, "part": part},
                )
            secret = _encrypted_for(block.origin, block.signature, block.redacted)
            item = _reasoning_item(block.item_id, text, secret)
        self.output[block.output_index] = item
        return out + self._event(
            "response.output_item.done", {"output_index": block.output_index, "item": item}
        )


def make_renderer(model: str) -> StreamRenderer:
    return StreamRenderer(model)


class StreamWatch:
    """Scans a raw Responses stream for usage and its terminal event without decoding deltas."""

    __slots__ = ("_buf", "complete", "usage")

    _MARKERS = (b"response.completed", b"response.incomplete", b"response.failed", b"error")
    _TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})

    def __init__(self) -> None:
        self.usage = Usage()
        self.complete = False
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        end = chunk.rfind(b"\n")
        if end < 0:
            self._buf += chunk
            return
        self._buf += chunk[:end]
        region = bytes(self._buf)
        self._buf = bytearray(chunk[end + 1 :])
        if not any(region.find(m) >= 0 for m in self._MARKERS):
            return
        for line in region.split(b"\n"):
            if not line.startswith(b"data:") or not any(line.find(m) >= 0 for m in self._MARKERS):
                continue
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict) or data.get("type") not in self._TERMINAL:
                continue
            response = data.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self.usage.merge(_usage_from(response["usage"]))
            self.complete = True


def make_watch() -> StreamWatch:
    return StreamWatch()


# --------------------------------------------------------------------------- upstream side: streams


class _Block:
    __slots__ = ("index", "origin_sent", "streamed")

    def __init__(self, index: int) -> None:
        self.index = index
        self.streamed = False  # a delta was relayed (so ``*.done`` must not repeat the text)
        self.origin_sent = False


class StreamParser:
    """Responses SSE events → canonical events; every delta is relayed as it arrives."""

    def __init__(self) -> None:
        self.started = False
        self.done = False
        self.next_index = 0
        self.calls = False
        self.blocks: dict[tuple[int, int], _Block] = {}  # (output_index, content_index | -1)
        self.seen_parts: set[tuple[int, int]] = set()
        self.item_outputs: dict[str, int] = {}  # item_id → output_index

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self.done or not event.data or event.data == "[DONE]":
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            self.done = True
            return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "malformed upstream stream event"))]
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.event
        out: list[StreamEvent] = []
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            block = self._text_block(data, out)
            block.streamed = True
            out.append(TextDelta(block.index, str(data.get("delta") or "")))
        elif kind == "response.function_call_arguments.delta":
            call = self.blocks.get((self._output_index(data), -1))
            if call is not None:
                call.streamed = True
                out.append(ToolCallDelta(call.index, str(data.get("delta") or "")))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self._thinking_text(data, str(data.get("delta") or ""), out)
        elif kind == "response.created":
            self._start(data.get("response") or {}, out)
        elif kind == "response.output_item.added":
            self._item_added(data, out)
        elif kind == "response.content_part.added":
            part = data.get("part") or {}
            block = self._text_block(data, out)
            text = part.get("text") or part.get("refusal") or ""
            if text:
                block.streamed = True
                out.append(TextDelta(block.index, text))
        elif kind in ("response.output_text.done", "response.refusal.done"):
            block = self._text_block(data, out)
            text = data.get("text") or data.get("refusal") or ""
            if not block.streamed and text:
                block.streamed = True
                out.append(TextDelta(block.index, text))
        elif kind == "response.content_part.done":
            key = (self._output_index(data), int(data.get("content_index") or 0))
            done = self.blocks.pop(key, None)
            if done is not None:
                out.append(BlockStop(done.index))
        elif kind == "response.function_call_arguments.done":
            call = self.blocks.get((self._output_index(data), -1))
            arguments = data.get("arguments") or ""
            if call is not None and not call.streamed and arguments:
                call.streamed = True
                out.append(ToolCallDelta(call.index, arguments))
        elif kind == "response.reasoning_summary_part.added":
            if int(data.get("summary_index") or 0) > 0:
                self._thinking_text(data, "\n\n", out)
        elif kind == "response.output_item.done":
            self._item_done(data, out)
        elif kind in ("response.completed", "response.incomplete"):
            self._completed(data, out)
        elif kind == "response.failed":
            self.done = True
            response = data.get("response") or {}
            out.append(ErrorEvent(_error_from(response.get("error"))))
        elif kind == "error":
            self.done = True
            out.append(ErrorEvent(_error_from(data.get("error", data))))
        # in_progress, queued, annotations, hosted-tool progress, keep-alives: nothing to relay
        return out

    def finish(self) -> list[StreamEvent]:
        if self.done:
            return []
        self.done = True
        return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "stream ended before completion"))]

    # ------------------------------------------------------------------ helpers

    def _start(self, response: dict[str, Any], out: list[StreamEvent]) -> None:
        if self.started:
            return
        self.started = True
        created = response.get("created_at")
        out.append(
            MessageStart(
                id=str(response.get("id") or ""),
                model=str(response.get("model") or ""),
                created=int(created) if isinstance(created, int | float) else 0,
            )
        )

    def _new(self, key: tuple[int, int]) -> _Block:
        block = _Block(self.next_index)
        self.next_index += 1
        self.blocks[key] = block
        return block

    def _output_index(self, data: dict[str, Any]) -> int:
        oi = data.get("output_index")
        if isinstance(oi, int):
            return oi
        return self.item_outputs.get(str(data.get("item_id")), -1)

    def _text_block(self, data: dict[str, Any], out: list[StreamEvent]) -> _Block:
        key = (self._output_index(data), int(data.get("content_index") or 0))
        block = self.blocks.get(key)
        if block is None:  # content_part.added, or a provider that skipped it
            self._start({}, out)
            block = self._new(key)
            self.seen_parts.add(key)
            out.append(TextStart(block.index))
        return block

    def _thinking_text(self, data: dict[str, Any], text: str, out: list[StreamEvent]) -> None:
        block = self.blocks.get((self._output_index(data), -1))
        if block is None or not text:
            return
        block.streamed = True
        block.origin_sent = True
        out.append(ThinkingDelta(block.index, text, origin=ORIGIN))

    def _item_added(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        item = data.get("item") or {}
        oi = self._output_index(data)
        if isinstance(item.get("id"), str):
            self.item_outputs[item["id"]] = oi
        kind = item.get("type")
        if kind == "function_call":
            self._start({}, out)
            self.calls = True
            block = self._new((oi, -1))
            call_id = str(item.get("call_id") or item.get("id") or "")
            out.append(ToolCallStart(block.index, call_id, str(item.get("name") or "")))
            if item.get("arguments"):
                block.streamed = True
                out.append(ToolCallDelta(block.index, item["arguments"]))
        elif kind == "reasoning":
            self._start({}, out)
            out.append(ThinkingStart(self._new((oi, -1)).index))

    def _item_done(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        item = data.get("item") or {}
        oi = self._output_index(data)
        kind = item.get("type")
        if kind == "message":
            # Close what content_part.done did not; relay content nobody streamed.
            for ci, part in enumerate(item.get("content") or []):
                key = (oi, ci)
                text = (
                    (part.get("text") or part.get("refusal") or "")
                    if isinstance(part, dict)
                    else ""
                )
                block = self.blocks.pop(key, None)
                if block is None:
                    if key in self.seen_parts or not text:
                        continue
                    self._start({}, out)
                    block = _Block(self.next_index)
                    self.next_index += 1
                    out.append(TextStart(block.index))
                if not block.streamed and text:
                    out.append(TextDelta(block.index, text))
                out.append(BlockStop(block.index))
            for key in [k for k in self.blocks if k[0] == oi]:
                out.append(BlockStop(self.blocks.pop(key).index))
            return
        block = self.blocks.pop((oi, -1), None)
        if block is None:
            return
        if kind == "function_call":
            if not block.streamed and item.get("arguments"):
                out.append(ToolCallDelta(block.index, item["arguments"]))
        elif kind == "reasoning":
            if not block.streamed:
                texts = [
                    s.get("text") or "" for s in item.get("summary") or [] if isinstance(s, dict)
                ]
                if any(texts):
                    block.origin_sent = True
                    out.append(ThinkingDelta(block.index, "\n\n".join(texts), origin=ORIGIN))
            secret = item.get("encrypted_content")
            if secret:
                out.append(ThinkingDelta(block.index, signature=secret, origin=ORIGIN))
            elif not block.origin_sent:
                out.append(ThinkingDelta(block.index, origin=ORIGIN))
        out.append(BlockStop(block.index))

    def _completed(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        self.done = True
        response = data.get("response") or {}
        self._start(response, out)
        for key in list(self.blocks):
            out.append(BlockStop(self.blocks.pop(key).index))
        if isinstance(response.get("usage"), dict):
            out.append(UsageEvent(_usage_from(response["usage"])))
        if not self.calls:
            self.calls = any(
                isinstance(i, dict) and i.get("type") == "function_call"
                for i in response.get("output") or []
            )
        stop = StopReason.TOOL_USE if self.calls else StopReason.END_TURN
        if response.get("status") == "incomplete" or data.get("type") == "response.incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason")
            stop = STOP_FROM_INCOMPLETE.get(str(reason), StopReason.MAX_TOKENS)
        out.append(MessageStop(stop))


def make_parser() -> StreamParser:
    return StreamParser()


__all__ = [
    "CONTENT_TYPE_STREAM",
    "NAME",
    "StreamParser",
    "StreamRenderer",
    "StreamWatch",
    "build_request",
    "make_parser",
    "make_renderer",
    "make_watch",
    "parse_error",
    "parse_request",
    "parse_response",
    "render_error",
    "render_models",
    "render_response",
    "response_items",
]
