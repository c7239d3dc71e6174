"""Anthropic requests: client bodies → :class:`Request`, and :class:`Request` → upstream bodies."""

from __future__ import annotations

import base64
import binascii
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
from relaygate.dialects._common import is_int, is_number, json_text, set_fields
from relaygate.dialects.anthropic._shared import (
    _text_block,
    _tool_input,
    _unwrap_signature,
)
from relaygate.dialects.anthropic._tables import (
    _KNOWN_FIELDS,
    _TOOL_CHOICE_FROM_WIRE,
    _TOOL_CHOICE_TO_WIRE,
    BUDGET_FOR_EFFORT,
    DEFAULT_MAX_TOKENS,
    FAMILY,
    MIN_THINKING_BUDGET,
    NAME,
    ROLE_FROM_WIRE,
    ROLE_TO_WIRE,
    SAMPLING_TO_WIRE,
    SERVER_TOOLS_EXTRA,
)

log = logging.getLogger(__name__)


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
    elif not is_int(max_tokens) or max_tokens < 1:
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
            if not is_number(value):
                raise invalid(f"{name}: must be a number", name)
            setattr(request, name, float(value))
    top_k = body.get("top_k")
    if top_k is not None:
        if not is_int(top_k):
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
    return TextPart(text, cache_control=_cache_control(block, param))


def _cache_control(block: dict[str, Any], param: str) -> dict[str, Any] | None:
    cache = block.get("cache_control")
    if cache is not None and not isinstance(cache, dict):
        raise invalid(f"{param}.cache_control: must be an object", f"{param}.cache_control")
    return cache


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
        return ToolCallPart(
            ident, name, json_text(args), cache_control=_cache_control(block, param)
        )
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
        return ImagePart(media_type=media, data=data, cache_control=_cache_control(block, param))
    if stype == "url":
        url = source.get("url")
        if not isinstance(url, str):
            raise invalid(f"{param}.source.url: field required", f"{param}.source.url")
        return ImagePart(url=url, cache_control=_cache_control(block, param))
    raise invalid(
        f"{param}.source.type: unsupported image source {stype!r}", f"{param}.source.type"
    )


def _parse_document(block: dict[str, Any], param: str) -> DocumentPart:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{param}.source: field required (an object)", f"{param}.source")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    cache = _cache_control(block, param)
    stype = source.get("type")
    data = source.get("data")
    if stype == "base64" and isinstance(data, str):
        media = source.get("media_type")
        return DocumentPart(
            media_type=media if isinstance(media, str) else "application/pdf",
            data=data,
            filename=title,
            cache_control=cache,
        )
    if stype == "text" and isinstance(data, str):
        # Canonical inline data is base64 whatever the media type.
        encoded = base64.b64encode(data.encode()).decode()
        return DocumentPart(
            media_type="text/plain", data=encoded, filename=title, cache_control=cache
        )
    if stype == "url" and isinstance(source.get("url"), str):
        return DocumentPart(url=source["url"], filename=title, cache_control=cache)
    raise invalid(f"{param}.source: unsupported document source {stype!r}", f"{param}.source")


def _parse_tool_result(block: dict[str, Any], param: str) -> ToolResultPart:
    ident = block.get("tool_use_id")
    if not isinstance(ident, str):
        raise invalid(f"{param}.tool_use_id: field required (a string)", f"{param}.tool_use_id")
    raw = block.get("content")
    content: list[TextPart | ImagePart | DocumentPart] = []
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
            elif item.get("type") == "document":
                content.append(_parse_document(item, iparam))
            else:
                log.warning("anthropic: dropping tool_result block of type %r", item.get("type"))
    elif raw is not None:
        raise invalid(f"{param}.content: must be a string or a list", f"{param}.content")
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise invalid(f"{param}.is_error: must be a boolean", f"{param}.is_error")
    return ToolResultPart(
        ident, content, is_error=is_error, cache_control=_cache_control(block, param)
    )


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
        if not is_int(budget):
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
    set_fields(request, body, SAMPLING_TO_WIRE)
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
        if source is None:
            return None
        return _cached({"type": "image", "source": source}, part.cache_control)
    if isinstance(part, DocumentPart):
        return _document_block(part)
    if isinstance(part, ToolCallPart):
        call = {
            "type": "tool_use",
            "id": part.id,
            "name": part.name,
            "input": _tool_input(part.arguments),
        }
        return _cached(call, part.cache_control)
    if isinstance(part, ToolResultPart):
        out: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
        content = [b for b in map(_request_block, part.content) if b is not None]
        if content:
            out["content"] = content
        if part.is_error:
            out["is_error"] = True
        return _cached(out, part.cache_control)
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
    return _cached(out, part.cache_control)


def _cached(block: dict[str, Any], cache_control: dict[str, Any] | None) -> dict[str, Any]:
    """``block`` with its cache breakpoint, where the client set one."""
    if cache_control is not None:
        block["cache_control"] = cache_control
    return block


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
