"""Kind ``ollama``: Ollama's native API — ``POST /api/chat`` (NDJSON streaming) and
``GET /api/tags`` (discovery).

Ollama has no client-facing dialect here, so this backend is canonical-only (``dialect =
None``): it builds ``/api/chat`` bodies from a :class:`Request` and turns the answers back into
a :class:`Response` or :class:`StreamEvent` values. Local Ollama needs no key; ollama.com takes
``Authorization: Bearer <OLLAMA_API_KEY>``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from relaygate.backends.base import CallContext, HttpBackend
from relaygate.backends.registry import BackendKind, BuildContext
from relaygate.canonical import (
    BlockStop,
    ContentPart,
    ErrorEvent,
    ErrorKind,
    GatewayError,
    ImagePart,
    MessageStart,
    MessageStop,
    Request,
    Response,
    Role,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    ThinkingDelta,
    ThinkingPart,
    ThinkingStart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    Usage,
    UsageEvent,
    client_status_for_upstream,
    upstream_kind_for_status,
)
from relaygate.redact import redact

DEFAULT_BASE_URL = "http://127.0.0.1:11434"

DONE_REASONS: dict[str, StopReason] = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "load": StopReason.END_TURN,
    "unload": StopReason.END_TURN,
}


# ----------------------------------------------------------------------------- request


def _tool_name_for(request: Request, call_id: str) -> str | None:
    for message in request.messages:
        for part in message.content:
            if isinstance(part, ToolCallPart) and part.id == call_id:
                return part.name
    return None


def _arguments(text: str) -> Any:
    try:
        return orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}


def build_chat(request: Request, native_model: str, *, stream: bool) -> dict[str, Any]:
    """A canonical request → an ``/api/chat`` body."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system_text()})
    for message in request.messages:
        if message.role is Role.TOOL:
            for part in message.content:
                if isinstance(part, ToolResultPart):
                    text = "".join(p.text for p in part.content if isinstance(p, TextPart))
                    entry: dict[str, Any] = {"role": "tool", "content": text}
                    name = part.name or _tool_name_for(request, part.tool_call_id)
                    if name:
                        entry["tool_name"] = name
                    messages.append(entry)
            continue
        out: dict[str, Any] = {"role": message.role.value, "content": message.text()}
        images = [p.data for p in message.content if isinstance(p, ImagePart) and p.data]
        if images:
            out["images"] = images
        thinking = "".join(p.text for p in message.content if isinstance(p, ThinkingPart))
        if thinking and message.role is Role.ASSISTANT:
            out["thinking"] = thinking
        calls = [p for p in message.content if isinstance(p, ToolCallPart)]
        if calls:
            out["tool_calls"] = [
                {"function": {"name": c.name, "arguments": _arguments(c.arguments)}} for c in calls
            ]
        messages.append(out)
    body: dict[str, Any] = {"model": native_model, "messages": messages, "stream": stream}
    options: dict[str, Any] = {}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.top_p is not None:
        options["top_p"] = request.top_p
    if request.top_k is not None:
        options["top_k"] = request.top_k
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.stop:
        options["stop"] = list(request.stop)
    if request.seed is not None:
        options["seed"] = request.seed
    if request.presence_penalty is not None:
        options["presence_penalty"] = request.presence_penalty
    if request.frequency_penalty is not None:
        options["frequency_penalty"] = request.frequency_penalty
    if options:
        body["options"] = options
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description or "",
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in request.tools
        ]
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        body["format"] = "json"
    elif fmt is not None and fmt.type == "json_schema" and fmt.schema is not None:
        body["format"] = fmt.schema
    if request.thinking is not None:
        body["think"] = request.thinking.enabled
    return body


# ----------------------------------------------------------------------------- response


def _usage(obj: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=int(obj.get("prompt_eval_count") or 0),
        output_tokens=int(obj.get("eval_count") or 0),
    )


def _tool_calls(message: Mapping[str, Any], start: int) -> list[ToolCallPart]:
    calls = []
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        args = function.get("arguments", {})
        calls.append(
            ToolCallPart(
                id=str(call.get("id") or f"call_{start + i}"),
                name=str(function.get("name", "")),
                arguments=args if isinstance(args, str) else orjson.dumps(args).decode(),
            )
        )
    return calls


def parse_chat(obj: Any) -> Response:
    if not isinstance(obj, dict) or "error" in obj:
        message = obj.get("error") if isinstance(obj, dict) else None
        raise GatewayError(ErrorKind.UPSTREAM, f"ollama error: {message or 'malformed answer'}")
    message = obj.get("message") or {}
    content: list[ContentPart] = []
    if message.get("thinking"):
        content.append(ThinkingPart(text=str(message["thinking"]), origin="ollama"))
    if message.get("content"):
        content.append(TextPart(str(message["content"])))
    calls = _tool_calls(message, 0)
    content.extend(calls)
    stop = (
        StopReason.TOOL_USE
        if calls
        else DONE_REASONS.get(str(obj.get("done_reason")), StopReason.END_TURN)
    )
    return Response(
        id=f"ollama-{int(time.time() * 1000)}",
        model=str(obj.get("model", "")),
        content=content,
        stop_reason=stop,
        usage=_usage(obj),
        created=int(time.time()),
    )


def parse_error(status: int, body: bytes) -> GatewayError:
    try:
        obj = orjson.loads(body)
        text = str(obj.get("error")) if isinstance(obj, dict) else body.decode(errors="replace")
    except orjson.JSONDecodeError:
        text = body.decode(errors="replace")[:300]
    return GatewayError(
        upstream_kind_for_status(status),
        f"ollama: {text}",
        status=client_status_for_upstream(status),
        upstream_status=status,
    )


class NDJSONParser:
    """Ollama stream lines → canonical stream events."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.open: tuple[str, int] | None = None  # ("text" | "thinking", index)
        self.index = 0
        self.saw_tool = False
        self.done = False

    def _close(self) -> list[StreamEvent]:
        if self.open is None:
            return []
        index = self.open[1]
        self.open = None
        self.index += 1
        return [BlockStop(index)]

    def _ensure(self, kind: str) -> list[StreamEvent]:
        if self.open is not None and self.open[0] == kind:
            return []
        events = self._close()
        self.open = (kind, self.index)
        events.append(TextStart(self.index) if kind == "text" else ThinkingStart(self.index))
        return events

    def feed(self, obj: Any) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if not self.started:
            self.started = True
            events.append(MessageStart(id=f"ollama-{int(time.time() * 1000)}", model=self.model))
        if not isinstance(obj, dict):
            events.append(
                ErrorEvent(
                    GatewayError(ErrorKind.UPSTREAM, "ollama sent a line that is not an object")
                )
            )
            return events
        if "error" in obj:
            events.append(ErrorEvent(GatewayError(ErrorKind.UPSTREAM, f"ollama: {obj['error']}")))
            return events
        message = obj.get("message") or {}
        if message.get("thinking"):
            events += self._ensure("thinking")
            events.append(ThinkingDelta(self.index, text=str(message["thinking"]), origin="ollama"))
        if message.get("content"):
            events += self._ensure("text")
            events.append(TextDelta(self.index, str(message["content"])))
        for call in _tool_calls(message, self.index):
            events += self._close()
            self.saw_tool = True
            events += [
                ToolCallStart(self.index, call.id, call.name),
                ToolCallDelta(self.index, call.arguments),
                BlockStop(self.index),
            ]
            self.index += 1
        if obj.get("done"):
            self.done = True
            events += self._close()
            events.append(UsageEvent(_usage(obj)))
            stop = (
                StopReason.TOOL_USE
                if self.saw_tool
                else DONE_REASONS.get(str(obj.get("done_reason")), StopReason.END_TURN)
            )
            events.append(MessageStop(stop))
        return events


# ----------------------------------------------------------------------------- backend


class OllamaBackend(HttpBackend):
    kind = "ollama"
    dialect = None
    default_base_url = DEFAULT_BASE_URL
    models_path = "/api/tags"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Users often paste the OpenAI-shim URL; the native API lives at the root.
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]

    def endpoint(self, native_model: str, stream: bool) -> str:
        return f"{self.base_url}/api/chat"

    def parse_models(self, data: Any) -> list[tuple[str, str | None]]:
        items = data.get("models", []) if isinstance(data, dict) else []
        return [
            (str(m.get("model") or m["name"]), m.get("name"))
            for m in items
            if isinstance(m, dict) and ("model" in m or "name" in m)
        ]

    def error_from(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        from relaygate.backends.base import retry_after_seconds

        err = parse_error(status, body)
        err.message = redact(err.message)
        err.retry_after = retry_after_seconds(headers)
        err.backend = self.id
        return err

    async def forward(self, body: dict[str, Any], *, stream: bool, ctx: CallContext) -> Any:
        raise GatewayError(
            ErrorKind.INTERNAL, "ollama has no byte-level fast path", backend=self.id
        )

    async def complete(self, request: Request, native_model: str, ctx: CallContext) -> Response:
        body = build_chat(request, native_model, stream=False)
        resp = await self._send(
            self.endpoint(native_model, False), orjson.dumps(body), ctx, stream=False
        )
        data = await resp.read()
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.UPSTREAM, "ollama returned a body that is not JSON", backend=self.id
            ) from None
        try:
            return parse_chat(obj)
        except GatewayError as err:
            err.backend = self.id
            err.message = redact(err.message)
            raise

    async def stream(
        self, request: Request, native_model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        body = build_chat(request, native_model, stream=True)
        resp = await self._send(
            self.endpoint(native_model, True), orjson.dumps(body), ctx, stream=True
        )
        parser = NDJSONParser(native_model)
        buffer = b""
        finished = False
        try:
            async for chunk in resp.iter_chunks():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        obj = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        obj = None
                    for event in parser.feed(obj):
                        if isinstance(event, ErrorEvent):
                            event.error.backend = self.id
                            event.error.message = redact(event.error.message)
                            finished = True
                        yield event
                        if finished:
                            return
                    if parser.done:
                        finished = True
                        return
            if buffer.strip():
                try:
                    tail: Any = orjson.loads(buffer)
                except orjson.JSONDecodeError:
                    tail = None
                for event in parser.feed(tail):
                    yield event
            finished = parser.done
        finally:
            if finished:
                resp.release()
            else:
                resp.close()


def _build(backend_id: str, options: Any, ctx: BuildContext) -> OllamaBackend:
    return OllamaBackend(backend_id, options, transport=ctx.transport, env=ctx.env)


def register_kinds(register: Any) -> None:
    register(
        BackendKind(
            "ollama",
            _build,
            description="Ollama (native /api/chat, NDJSON streaming, /api/tags discovery)",
            default_base_url=DEFAULT_BASE_URL,
        )
    )
