"""Responses requests: client bodies → :class:`Request`, and :class:`Request` → upstream bodies."""

from __future__ import annotations

import logging
from typing import Any

from relaygate.canonical import (
    ContentPart,
    DocumentPart,
    ImagePart,
    Message,
    Request,
    ResponseFormat,
    Role,
    TextPart,
    ThinkingConfig,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    invalid,
)
from relaygate.dialects._common import split_data_url, type_name
from relaygate.dialects.openai_responses._shared import (
    _opt_bool,
    _opt_dict,
    _opt_num,
    _opt_str,
    _req_str,
    _thinking,
)
from relaygate.dialects.openai_responses._tables import (
    _CHOICE_MODES,
    _EMPTY_SCHEMA,
    _FORMAT_TYPES,
    _KNOWN_FIELDS,
    EFFORT_ABOVE_BUDGETS,
    EFFORT_FOR_BUDGET,
    MIN_OUTPUT_TOKENS,
    NAME,
    ORIGIN,
    ROLE_FROM_WIRE,
    SYSTEM_ROLES,
)

log = logging.getLogger(__name__)


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
            f"Invalid type for 'input': expected a string or an array, got {type_name(raw_input)}.",
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
            raise invalid(f"Invalid type for '{p}': expected an object, got {type_name(item)}.", p)
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
            f"Invalid type for '{p}': expected a string or an array, got {type_name(content)}.", p
        )
    parts: list[ContentPart] = []
    kept: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        pj = f"{p}[{j}]"
        if not isinstance(part, dict):
            raise invalid(
                f"Invalid type for '{pj}': expected an object, got {type_name(part)}.", pj
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
                media_type, data = split_data_url(url)
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
                    split_data_url(file_data)
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


def _parse_tool_output(output: Any, p: str) -> list[TextPart | ImagePart | DocumentPart]:
    if isinstance(output, str):
        return [TextPart(output)]
    if not isinstance(output, list):
        if output is None:
            raise invalid(f"Missing required parameter: '{p}'.", p)
        raise invalid(
            f"Invalid type for '{p}': expected a string or an array, got {type_name(output)}.", p
        )
    parts, kept = _parse_content(output, p)
    out = [x for x in parts if isinstance(x, TextPart | ImagePart | DocumentPart)]
    if kept or len(out) != len(parts):
        log.debug("dropped parts of a function_call_output with no canonical form")
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
            f"Invalid type for 'tools': expected an array, got {type_name(tools)}.", "tools"
        )
    hosted: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        p = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(f"Invalid type for '{p}': expected an object, got {type_name(tool)}.", p)
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
            if kind == "allowed_tools":
                choice.names = _function_names(raw.get("tools"), "tool_choice.tools")
        else:
            raise invalid("Missing required parameter: 'tool_choice.type'.", "tool_choice.type")
    elif raw is not None:
        raise invalid(
            f"Invalid type for 'tool_choice': expected a string or an object, got {type_name(raw)}.",
            "tool_choice",
        )
    parallel = _opt_bool(body, "parallel_tool_calls", "parallel_tool_calls")
    if parallel is not None:
        choice = choice or ToolChoice()
        choice.parallel = parallel
    req.tool_choice = choice


def _function_names(raw: Any, p: str) -> list[str] | None:
    """The function names of an ``allowed_tools`` list (hosted tools stay in extras only)."""
    if not isinstance(raw, list):
        raise invalid(f"Invalid type for '{p}': expected an array, got {type_name(raw)}.", p)
    names = [
        _req_str(t, "name", f"{p}[{i}].name")
        for i, t in enumerate(raw)
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    return names or None


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
        elif choice is not None and choice.names and choice.mode in ("auto", "required"):
            body["tool_choice"] = {
                "type": "allowed_tools",
                "mode": choice.mode,
                "tools": [{"type": "function", "name": n} for n in choice.names],
            }
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
            {"type": "input_text", "text": x.text}
            if isinstance(x, TextPart)
            else _image(x)
            if isinstance(x, ImagePart)
            else _document(x)
            for x in part.content
        ]
    if part.is_error:
        dropped.append("tool_result.is_error")
    return {"type": "function_call_output", "call_id": part.tool_call_id, "output": output}
