"""OpenAI Chat Completions, both ways.

Client side: ``POST /v1/chat/completions`` bodies in, ``chat.completion`` objects and
``chat.completion.chunk`` SSE out. Upstream side: the same format towards OpenAI and every
OpenAI-compatible server.
"""

from __future__ import annotations

import logging
import time
from typing import Any

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
from relaygate.dialects._common import (
    is_int,
    is_number,
    json_text,
    openai_models,
    split_data_url,
)
from relaygate.dialects.sse import DONE, SSEEvent

NAME = "openai-chat"
CONTENT_TYPE_STREAM = "text/event-stream"
log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- mapping tables

FINISH_TO_STOP: dict[str, StopReason] = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "content_filter": StopReason.CONTENT_FILTER,
}
STOP_TO_FINISH: dict[StopReason, str] = {
    StopReason.END_TURN: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.STOP_SEQUENCE: "stop",
    StopReason.TOOL_USE: "tool_calls",
    StopReason.CONTENT_FILTER: "content_filter",
    StopReason.PAUSE: "stop",
    StopReason.ERROR: "stop",
}
ERROR_TYPES: dict[ErrorKind, tuple[str, str | None]] = {
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.AUTHENTICATION: ("authentication_error", "invalid_api_key"),
    ErrorKind.PERMISSION: ("permission_error", None),
    ErrorKind.NOT_FOUND: ("invalid_request_error", "model_not_found"),
    ErrorKind.REQUEST_TOO_LARGE: ("invalid_request_error", "request_too_large"),
    ErrorKind.RATE_LIMIT: ("rate_limit_exceeded", "rate_limit_exceeded"),
    ErrorKind.BUDGET: ("insufficient_quota", "budget_exceeded"),
    ErrorKind.LOOP: ("invalid_request_error", "loop_detected"),
    ErrorKind.UPSTREAM: ("upstream_error", None),
    ErrorKind.UNAVAILABLE: ("service_unavailable", None),
    ErrorKind.OVERLOADED: ("service_unavailable", "overloaded"),
    ErrorKind.TIMEOUT: ("timeout", None),
    ErrorKind.INTERNAL: ("server_error", None),
}
# Top-level request fields this module maps; anything else is kept in ``Request.extras``.
_KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "functions",
        "tool_choice",
        "function_call",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "response_format",
        "reasoning_effort",
        "seed",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "user",
        "metadata",
    }
)


# ----------------------------------------------------------------------------- client side


def _require(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise invalid(message, param)


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    _require(
        is_number(value),
        f"'{key}' must be a number.",
        key,
    )
    return float(value)


def _integer(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    _require(is_int(value), f"'{key}' must be an integer.", key)
    return int(value)


def _image_from_url(url: str, detail: str | None) -> ImagePart:
    if url.startswith("data:"):
        media_type, data = split_data_url(url)
        return ImagePart(media_type=media_type, data=data, detail=detail)
    return ImagePart(url=url, detail=detail)


def _parse_parts(content: Any, param: str) -> list[ContentPart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    _require(
        isinstance(content, list),
        f"'{param}' must be a string or an array of content parts.",
        param,
    )
    parts: list[ContentPart] = []
    for i, raw in enumerate(content):
        where = f"{param}[{i}]"
        _require(isinstance(raw, dict), f"'{where}' must be an object.", where)
        kind = raw.get("type")
        if kind == "text":
            text = raw.get("text")
            _require(isinstance(text, str), f"'{where}.text' must be a string.", f"{where}.text")
            parts.append(TextPart(text))
        elif kind == "image_url":
            image = raw.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            _require(
                isinstance(url, str),
                f"'{where}.image_url.url' must be a string.",
                f"{where}.image_url",
            )
            detail = image.get("detail") if isinstance(image, dict) else None
            parts.append(_image_from_url(str(url), detail))
        elif kind == "file":
            file = raw.get("file") or {}
            data = file.get("file_data")
            media_type = None
            if isinstance(data, str) and data.startswith("data:"):
                media_type, data = split_data_url(data)
            parts.append(
                DocumentPart(media_type=media_type, data=data, filename=file.get("filename"))
            )
        elif kind == "refusal":
            parts.append(TextPart(str(raw.get("refusal", ""))))
        else:
            raise invalid(f"Unsupported content part type {kind!r} in '{where}'.", f"{where}.type")
    return parts


def _parse_tool_calls(raw_calls: Any, param: str) -> list[ContentPart]:
    _require(isinstance(raw_calls, list), f"'{param}' must be an array.", param)
    calls: list[ContentPart] = []
    for i, call in enumerate(raw_calls):
        where = f"{param}[{i}]"
        _require(isinstance(call, dict), f"'{where}' must be an object.", where)
        function = call.get("function")
        _require(
            isinstance(function, dict),
            f"'{where}.function' must be an object.",
            f"{where}.function",
        )
        name = function.get("name")
        _require(
            isinstance(name, str),
            f"'{where}.function.name' must be a string.",
            f"{where}.function.name",
        )
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json_text(arguments)
        calls.append(
            ToolCallPart(id=str(call.get("id") or f"call_{i}"), name=name, arguments=arguments)
        )
    return calls


def _parse_messages(raw_messages: Any) -> tuple[list[TextPart], list[Message]]:
    _require(
        isinstance(raw_messages, list) and len(raw_messages) > 0,
        "'messages' must be a non-empty array.",
        "messages",
    )
    system: list[TextPart] = []
    messages: list[Message] = []
    # Legacy ``function_call`` turns carry no id; their ``function`` results name the function.
    # Both sides get the same made-up id so that tool results still pair with their call.
    legacy_ids: dict[str, str] = {}
    for i, raw in enumerate(raw_messages):
        where = f"messages[{i}]"
        _require(isinstance(raw, dict), f"'{where}' must be an object.", where)
        role = raw.get("role")
        content = raw.get("content")
        if role in ("system", "developer"):
            system.extend(
                p for p in _parse_parts(content, f"{where}.content") if isinstance(p, TextPart)
            )
        elif role == "user":
            messages.append(
                Message(Role.USER, _parse_parts(content, f"{where}.content"), raw.get("name"))
            )
        elif role == "assistant":
            parts: list[ContentPart] = []
            reasoning = raw.get("reasoning_content") or raw.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                parts.append(ThinkingPart(text=reasoning, origin="openai-chat"))
            parts.extend(_parse_parts(content, f"{where}.content"))
            if raw.get("tool_calls"):
                parts.extend(_parse_tool_calls(raw["tool_calls"], f"{where}.tool_calls"))
            elif isinstance(raw.get("function_call"), dict):
                call_id = f"call_legacy_{i}"
                parts.extend(
                    _parse_tool_calls([{"id": call_id, "function": raw["function_call"]}], where)
                )
                name = raw["function_call"].get("name")
                if isinstance(name, str):
                    legacy_ids[name] = call_id
            messages.append(Message(Role.ASSISTANT, parts, raw.get("name")))
        elif role in ("tool", "function"):
            call_id = raw.get("tool_call_id")
            if call_id is None and role == "function" and isinstance(raw.get("name"), str):
                call_id = legacy_ids.get(raw["name"], raw["name"])
            _require(
                isinstance(call_id, str),
                f"'{where}.tool_call_id' is required.",
                f"{where}.tool_call_id",
            )
            # Chat tool messages carry text (and images from lenient clients), never files.
            result: list[TextPart | ImagePart | DocumentPart] = [
                p
                for p in _parse_parts(content, f"{where}.content")
                if isinstance(p, TextPart | ImagePart)
            ]
            messages.append(
                Message(
                    Role.TOOL,
                    [ToolResultPart(tool_call_id=call_id, content=result, name=raw.get("name"))],
                )
            )
        else:
            raise invalid(
                f"Invalid value for '{where}.role': {role!r}. Supported values are: 'system', "
                "'developer', 'user', 'assistant' and 'tool'.",
                f"{where}.role",
            )
    return system, messages


def _parse_tools(body: dict[str, Any]) -> list[ToolSpec]:
    raw = body.get("tools")
    if raw is None and isinstance(body.get("functions"), list):
        raw = [{"type": "function", "function": f} for f in body["functions"]]
    if raw is None:
        return []
    _require(isinstance(raw, list), "'tools' must be an array.", "tools")
    tools: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        _require(isinstance(tool, dict), f"'{where}' must be an object.", where)
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise invalid(
                f"Unsupported tool type {tool.get('type')!r} in '{where}'.", f"{where}.type"
            )
        name = function.get("name")
        _require(
            isinstance(name, str) and name != "",
            f"'{where}.function.name' must be a non-empty string.",
            f"{where}.function.name",
        )
        tools.append(
            ToolSpec(
                name=str(name),
                description=function.get("description"),
                parameters=function.get("parameters"),
                strict=function.get("strict"),
            )
        )
    return tools


def _parse_tool_choice(body: dict[str, Any]) -> ToolChoice | None:
    raw = body.get("tool_choice", body.get("function_call"))
    parallel = body.get("parallel_tool_calls")
    if raw is None:
        return ToolChoice(parallel=False) if parallel is False else None
    if raw in ("auto", "none", "required"):
        return ToolChoice(mode=raw, parallel=parallel)
    if isinstance(raw, dict) and raw.get("type") == "allowed_tools":
        allowed = raw.get("allowed_tools")
        mode = allowed.get("mode") if isinstance(allowed, dict) else None
        tools = allowed.get("tools") if isinstance(allowed, dict) else None
        _require(
            mode in ("auto", "required") and isinstance(tools, list),
            "'tool_choice.allowed_tools' must have 'mode' ('auto' or 'required') and 'tools'.",
            "tool_choice.allowed_tools",
        )
        assert isinstance(tools, list)
        names = [
            t["function"]["name"]
            for t in tools
            if isinstance(t, dict)
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
        ]
        _require(
            len(names) == len(tools),
            "'tool_choice.allowed_tools.tools' must be function tools with a name.",
            "tool_choice.allowed_tools.tools",
        )
        return ToolChoice(
            mode="required" if mode == "required" else "auto",
            names=names or None,
            parallel=parallel,
        )
    if isinstance(raw, dict):
        function = raw.get("function") if "function" in raw else raw
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return ToolChoice(mode="tool", name=function["name"], parallel=parallel)
    raise invalid(
        "'tool_choice' must be 'auto', 'none', 'required' or a function object.", "tool_choice"
    )


def _parse_response_format(raw: Any) -> ResponseFormat | None:
    if raw is None:
        return None
    _require(isinstance(raw, dict), "'response_format' must be an object.", "response_format")
    kind = raw.get("type")
    if kind == "json_schema":
        spec = raw.get("json_schema")
        _require(
            isinstance(spec, dict),
            "'response_format.json_schema' must be an object.",
            "response_format.json_schema",
        )
        return ResponseFormat(
            "json_schema",
            schema=spec.get("schema"),
            name=spec.get("name"),
            strict=spec.get("strict"),
        )
    if kind in ("json_object", "text"):
        return ResponseFormat(kind)
    raise invalid(f"Invalid 'response_format.type': {kind!r}.", "response_format.type")


def parse_request(body: dict[str, Any]) -> Request:
    """A Chat Completions request body → canonical :class:`Request` (raises 400 errors)."""
    model = body.get("model")
    _require(isinstance(model, str) and model != "", "you must provide a model parameter", "model")
    system, messages = _parse_messages(body.get("messages"))
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    _require(
        stop is None or (isinstance(stop, list) and all(isinstance(s, str) for s in stop)),
        "'stop' must be a string or an array of strings.",
        "stop",
    )
    stream = body.get("stream", False)
    _require(isinstance(stream, bool) or stream is None, "'stream' must be a boolean.", "stream")
    options = body.get("stream_options") or {}
    effort = body.get("reasoning_effort")
    max_tokens = _integer(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens")
    metadata = body.get("metadata")
    extras = {k: v for k, v in body.items() if k not in _KNOWN_FIELDS}
    return Request(
        model=model,  # type: ignore[arg-type]
        messages=messages,
        system=system,
        tools=_parse_tools(body),
        tool_choice=_parse_tool_choice(body),
        max_tokens=max_tokens,
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        stop=stop or [],
        stream=bool(stream),
        response_format=_parse_response_format(body.get("response_format")),
        thinking=ThinkingConfig(effort=effort) if isinstance(effort, str) else None,
        user=body.get("user") if isinstance(body.get("user"), str) else None,
        seed=_integer(body, "seed"),
        n=_integer(body, "n"),
        presence_penalty=_number(body, "presence_penalty"),
        frequency_penalty=_number(body, "frequency_penalty"),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        metadata=metadata if isinstance(metadata, dict) else {},
        extras=extras,
        source_dialect=NAME,
    )


def _usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def render_response(response: Response) -> bytes:
    """Canonical :class:`Response` → a ``chat.completion`` object."""
    text = "".join(p.text for p in response.content if isinstance(p, TextPart))
    reasoning = "".join(p.text for p in response.content if isinstance(p, ThinkingPart))
    calls = [p for p in response.content if isinstance(p, ToolCallPart)]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
        "annotations": [],
    }
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    return orjson.dumps(
        {
            "id": response.id if response.id.startswith("chatcmpl") else "chatcmpl-" + response.id,
            "object": "chat.completion",
            "created": response.created or int(time.time()),
            "model": response.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": STOP_TO_FINISH[response.stop_reason],
                }
            ],
            "usage": _usage_dict(response.usage),
        }
    )


class ChatStreamRenderer:
    """Canonical events → ``chat.completion.chunk`` SSE. One instance per response."""

    def __init__(
        self, model: str, *, include_usage: bool = True, response_id: str | None = None
    ) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = response_id or f"chatcmpl-{time.time_ns():x}"
        self.created = int(time.time())
        self.usage = Usage()
        self._tool_slot: dict[int, int] = {}  # block index → tool_calls[].index
        self._prefix = b""
        self._set_prefix()

    def _set_prefix(self) -> None:
        head = orjson.dumps(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
            }
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":[{"index":0,"delta":'

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        tail = (
            b',"logprobs":null,"finish_reason":null}]}\n\n'
            if finish is None
            else (b',"logprobs":null,"finish_reason":"' + finish.encode() + b'"}]}\n\n')
        )
        return self._prefix + orjson.dumps(delta) + tail

    def feed(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._chunk({"content": event.text}) if event.text else b""
        if isinstance(event, ToolCallDelta):
            slot = self._tool_slot.get(event.index, 0)
            return self._chunk(
                {"tool_calls": [{"index": slot, "function": {"arguments": event.arguments}}]}
            )
        if isinstance(event, ThinkingDelta):
            return self._chunk({"reasoning_content": event.text}) if event.text else b""
        if isinstance(event, ToolCallStart):
            slot = self._tool_slot[event.index] = len(self._tool_slot)
            return self._chunk(
                {
                    "tool_calls": [
                        {
                            "index": slot,
                            "id": event.id,
                            "type": "function",
                            "function": {"name": event.name, "arguments": ""},
                        }
                    ]
                }
            )
        if isinstance(event, MessageStart):
            if event.id and event.id != self.id:
                self.id = event.id if event.id.startswith("chatcmpl") else "chatcmpl-" + event.id
                self._set_prefix()
            if event.usage is not None:
                self.usage.merge(event.usage)
            return self._chunk({"role": "assistant", "content": "", "refusal": None})
        if isinstance(event, UsageEvent):
            self.usage.merge(event.usage)
            return b""
        if isinstance(event, MessageStop):
            out = self._chunk({}, STOP_TO_FINISH[event.stop_reason])
            if self.include_usage:
                head = orjson.dumps(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": _usage_dict(self.usage),
                    }
                )
                out += b"data: " + head + b"\n\n"
            return out + DONE
        if isinstance(event, ErrorEvent):
            return self.error(event.error)
        return b""  # TextStart, ThinkingStart, BlockStop: no wire counterpart

    def error(self, err: GatewayError) -> bytes:
        return b"data: " + render_error(err) + b"\n\n" + DONE


def make_renderer(model: str, *, include_usage: bool = True) -> ChatStreamRenderer:
    return ChatStreamRenderer(model, include_usage=include_usage)


def render_error(err: GatewayError) -> bytes:
    kind, code = ERROR_TYPES.get(err.kind, ("server_error", None))
    return orjson.dumps(
        {
            "error": {
                "message": err.message,
                "type": kind,
                "param": err.param,
                "code": err.code or code,
            }
        }
    )


def render_models(models: list[ModelInfo]) -> bytes:
    return openai_models(models)


class ChatStreamWatch:
    """Scans a same-dialect stream as raw bytes: usage from the chunk that carries it, and
    completeness from ``[DONE]``. Only lines that contain a non-null usage, or an ``"error"``
    key, are parsed. ``error`` is the upstream's own error chunk (``data: {"error": …}``): it
    ends the client's stream but for ``[DONE]``, which ``owed`` holds until the upstream sends it.
    """

    __slots__ = ("_tail", "complete", "error", "finish_reason", "owed", "usage")

    def __init__(self) -> None:
        self.usage = Usage()
        self.complete = False
        self.error: GatewayError | None = None
        self.owed = b""
        self.finish_reason: str | None = None
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        # Per chunk: a few memchr-speed scans of the complete lines, no split and no copy;
        # only the line that carries a usage object is sliced out and parsed.
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n")
        end = cut + 1
        tail = data[end:] if end < len(data) else b""
        self._tail = tail if len(tail) <= 1 << 20 else b""  # such a line carries nothing we scan
        if cut < 0:
            return
        pos = data.find(b'"usage":{', 0, end)
        while pos >= 0:
            stop = data.find(b"\n", pos, end)  # found: data[cut] is a newline
            line = data[data.rfind(b"\n", 0, pos) + 1 : stop]
            if line.startswith(b"data:"):
                try:
                    obj = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict):
                    self.usage.merge(_parse_usage(obj.get("usage")))
            pos = data.find(b'"usage":{', stop, end)
        if self.error is None and data.find(b'"error"', 0, end) >= 0:
            self._error(data[:end])
        done = data.rfind(b"[DONE]", 0, end)
        if done >= 0 and (data[done - 6 : done] == b"data: " or data[done - 5 : done] == b"data:"):
            if self.error is None:
                self.complete = True
            self.owed = b""

    def _error(self, lines: bytes) -> None:
        for line in lines.split(b"\n"):
            if b'"error"' not in line or not line.startswith(b"data:"):
                continue
            try:
                obj = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict) and "error" in obj and not obj.get("choices"):
                self.error = parse_error(502, line[5:].strip())
                self.owed = DONE
                return


def make_watch() -> ChatStreamWatch:
    return ChatStreamWatch()


# ----------------------------------------------------------------------------- upstream side


def _image_url(part: ImagePart) -> dict[str, Any]:
    url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.data}"
    out: dict[str, Any] = {"url": url}
    if part.detail:
        out["detail"] = part.detail
    return out


def _user_content(parts: list[ContentPart]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append({"type": "text", "text": p.text})
        elif isinstance(p, ImagePart):
            out.append({"type": "image_url", "image_url": _image_url(p)})
        elif isinstance(p, DocumentPart):
            data = p.data if p.url is None else p.url
            out.append(
                {
                    "type": "file",
                    "file": {
                        "filename": p.filename or "document",
                        "file_data": f"data:{p.media_type or 'application/pdf'};base64,{data}",
                    },
                }
            )
        else:
            log.debug("openai-chat: dropping %s part in a user message", p.type)
    return out


def _tool_result_content(part: ToolResultPart) -> str:
    texts = [p.text for p in part.content if isinstance(p, TextPart)]
    if len(texts) != len(part.content):
        log.debug("openai-chat: tool result images have no counterpart; dropped")
    text = "\n".join(texts)
    return f"Error: {text}" if part.is_error and not text.startswith("Error") else text


def _build_messages(request: Request) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system_text()})
    for message in request.messages:
        if message.role is Role.USER:
            item: dict[str, Any] = {"role": "user", "content": _user_content(message.content)}
            if message.name:
                item["name"] = message.name
            out.append(item)
            # A user turn may carry tool results too (folded by some dialects).
            for p in message.content:
                if isinstance(p, ToolResultPart):
                    out.append(
                        {
                            "role": "tool",
                            "tool_call_id": p.tool_call_id,
                            "content": _tool_result_content(p),
                        }
                    )
        elif message.role is Role.ASSISTANT:
            text = "".join(p.text for p in message.content if isinstance(p, TextPart))
            calls = [p for p in message.content if isinstance(p, ToolCallPart)]
            item = {"role": "assistant", "content": text or None}
            if calls:
                item["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in calls
                ]
            out.append(item)
        else:
            for p in message.content:
                if isinstance(p, ToolResultPart):
                    out.append(
                        {
                            "role": "tool",
                            "tool_call_id": p.tool_call_id,
                            "content": _tool_result_content(p),
                        }
                    )
    # Drop user messages emptied by the tool-result fold.
    return [m for m in out if not (m["role"] == "user" and m["content"] == [])]


def build_request(
    request: Request,
    native_model: str,
    *,
    max_tokens_field: str = "max_completion_tokens",
) -> dict[str, Any]:
    """Canonical :class:`Request` → a Chat Completions body for ``native_model``."""
    body: dict[str, Any] = {"model": native_model, "messages": _build_messages(request)}
    if request.tools:
        tools = []
        for t in request.tools:
            function: dict[str, Any] = {"name": t.name}
            if t.description is not None:
                function["description"] = t.description
            function["parameters"] = t.parameters or {"type": "object", "properties": {}}
            if t.strict is not None:
                function["strict"] = t.strict
            tools.append({"type": "function", "function": function})
        body["tools"] = tools
    choice = request.tool_choice
    if choice is not None:
        if choice.mode == "tool":
            body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        elif choice.names and choice.mode in ("auto", "required"):
            tools = [{"type": "function", "function": {"name": n}} for n in choice.names]
            body["tool_choice"] = {
                "type": "allowed_tools",
                "allowed_tools": {"mode": choice.mode, "tools": tools},
            }
        elif request.tools or choice.mode == "none":
            body["tool_choice"] = choice.mode
        if choice.parallel is False and request.tools:
            body["parallel_tool_calls"] = False
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    for key in (
        "temperature",
        "top_p",
        "seed",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "user",
    ):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.stop:
        body["stop"] = request.stop
    fmt = request.response_format
    if fmt is not None:
        if fmt.type == "json_schema":
            spec: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema or {}}
            if fmt.strict is not None:
                spec["strict"] = fmt.strict
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            body["response_format"] = {"type": fmt.type}
    if request.thinking is not None and request.thinking.effort:
        body["reasoning_effort"] = request.thinking.effort
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if request.source_dialect == NAME:
        for key, value in request.extras.items():
            body.setdefault(key, value)
    elif request.extras:
        log.debug("openai-chat: dropping fields with no counterpart: %s", sorted(request.extras))
    return body


def _parse_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt = raw.get("prompt_tokens") or 0
    completion = raw.get("completion_tokens") or 0
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(prompt),
        output_tokens=int(completion),
        cache_read_tokens=int(
            prompt_details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0
        ),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def _check_completion(body: dict[str, Any]) -> list[Any]:
    """The choices of a ``chat.completion``; an error body (even under a 200) raises."""
    if "error" in body and not body.get("choices"):
        raise parse_error(502, orjson.dumps(body))
    choices = body.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise GatewayError(ErrorKind.UPSTREAM, "upstream returned a completion without choices")
    return choices  # type: ignore[no-any-return]


def response_usage(body: dict[str, Any]) -> Usage:
    """What :func:`parse_response` checks and its usage, without converting the content: the
    same-dialect relay sends the upstream's bytes and only needs these."""
    _check_completion(body)
    return _parse_usage(body.get("usage"))


def parse_response(body: dict[str, Any]) -> Response:
    """A ``chat.completion`` object → canonical :class:`Response`."""
    choice = _check_completion(body)[0]
    message = choice.get("message") or {}
    content: list[ContentPart] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append(ThinkingPart(text=reasoning, origin="openai-chat"))
    if isinstance(message.get("content"), str) and message["content"]:
        content.append(TextPart(message["content"]))
    elif isinstance(message.get("refusal"), str) and message["refusal"]:
        content.append(TextPart(message["refusal"]))
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        content.append(
            ToolCallPart(
                id=call.get("id") or f"call_{i}",
                name=function.get("name", ""),
                arguments=function.get("arguments") or "",
            )
        )
    finish = choice.get("finish_reason") or "stop"
    stop = FINISH_TO_STOP.get(finish, StopReason.END_TURN)
    if stop is StopReason.END_TURN and any(isinstance(p, ToolCallPart) for p in content):
        stop = StopReason.TOOL_USE
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        stop_reason=stop,
        usage=_parse_usage(body.get("usage")),
        created=int(body.get("created") or 0),
    )


class ChatStreamParser:
    """``chat.completion.chunk`` SSE → canonical events (blocks opened and closed in order)."""

    def __init__(self) -> None:
        self._started = False
        self._open: int | None = None  # block index currently open
        self._open_kind = ""
        self._next_index = 0
        self._tool_blocks: dict[int, int] = {}  # tool_calls[].index → block index
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._done = False

    def _close(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open))
            self._open = None
            self._open_kind = ""

    def _open_block(self, kind: str, out: list[StreamEvent]) -> int:
        self._close(out)
        index = self._next_index
        self._next_index += 1
        self._open = index
        self._open_kind = kind
        return index

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = event.data
        if data == "[DONE]":
            return self._end()
        if not data:
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return [
                ErrorEvent(
                    GatewayError(ErrorKind.UPSTREAM, "upstream sent a malformed stream chunk")
                )
            ]
        out: list[StreamEvent] = []
        if "error" in chunk and not chunk.get("choices"):
            out.append(ErrorEvent(parse_error(502, orjson.dumps(chunk))))
            self._done = True
            return out
        if not self._started:
            self._started = True
            out.append(
                MessageStart(
                    id=str(chunk.get("id") or ""),
                    model=str(chunk.get("model") or ""),
                    created=int(chunk.get("created") or 0),
                )
            )
        if chunk.get("usage"):
            self._usage = _parse_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                if self._open_kind != "thinking":
                    out.append(ThinkingStart(self._open_block("thinking", out)))
                out.append(ThinkingDelta(self._open or 0, reasoning, origin="openai-chat"))
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._open_kind != "text":
                    out.append(TextStart(self._open_block("text", out)))
                out.append(TextDelta(self._open or 0, text))
            for call in delta.get("tool_calls") or ():
                slot = call.get("index", 0)
                function = call.get("function") or {}
                block = self._tool_blocks.get(slot)
                if block is None:
                    block = self._open_block("tool", out)
                    self._tool_blocks[slot] = block
                    out.append(
                        ToolCallStart(
                            block,
                            str(call.get("id") or f"call_{slot}"),
                            str(function.get("name") or ""),
                        )
                    )
                elif block != self._open:
                    # A late fragment for a call already closed: providers do not interleave
                    # parallel calls, so this is a protocol slip we cannot repair in order.
                    log.warning("openai-chat: fragment for closed tool call %s dropped", slot)
                    continue
                arguments = function.get("arguments")
                if arguments:
                    out.append(ToolCallDelta(block, arguments))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _end(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        out: list[StreamEvent] = []
        if not self._started:
            out.append(MessageStart(id="", model=""))
            self._started = True
        self._close(out)
        if self._usage is not None:
            out.append(UsageEvent(self._usage))
        stop = FINISH_TO_STOP.get(self._finish or "stop", StopReason.END_TURN)
        if stop is StopReason.END_TURN and self._tool_blocks:
            stop = StopReason.TOOL_USE
        out.append(MessageStop(stop))
        return out

    def finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        if self._finish is not None:
            # Some OpenAI-compatible servers end after the finish chunk without [DONE].
            return self._end()
        self._done = True
        return [
            ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "upstream stream ended before completion"))
        ]


def make_parser() -> ChatStreamParser:
    return ChatStreamParser()


def parse_error(status: int, body: bytes) -> GatewayError:
    """An upstream error response → :class:`GatewayError`, keeping the upstream's message."""
    message = ""
    code = None
    param = None
    try:
        obj = orjson.loads(body)
        err = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or "")
            code = err.get("code")
            param = err.get("param")
        elif isinstance(err, str):
            message = err
        elif isinstance(obj, dict) and isinstance(obj.get("message"), str):
            message = obj["message"]
    except orjson.JSONDecodeError:
        message = body[:500].decode("utf-8", "replace").strip()
    return GatewayError(
        upstream_kind_for_status(status),
        message or f"upstream returned HTTP {status}",
        status=client_status_for_upstream(status),
        param=param if isinstance(param, str) else None,
        code=str(code) if code is not None else None,
        upstream_status=status,
    )
