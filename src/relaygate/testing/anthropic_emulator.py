"""An Anthropic Messages upstream, faithful to the wire format.

* ``POST /v1/messages``: a ``message`` object, or SSE — ``message_start`` (empty content, input
  usage), ``ping``, then each block in turn (thinking with ``thinking_delta`` and a
  ``signature_delta``; text with ``text_delta``; every ``tool_use`` with ``input_json_delta``
  fragments, the first one empty), ``message_delta`` (stop reason, cumulative usage),
  ``message_stop``.
* ``POST /v1/messages/count_tokens``: ``{"input_tokens": n}``.
* ``GET /v1/models``: the paginated list shape.
* Errors: ``{"type": "error", "error": {"type", "message"}, "request_id"}``; 529 is
  ``overloaded_error``. Requests need ``anthropic-version``; with ``api_key`` set they need
  ``x-api-key`` (``Authorization: Bearer`` is accepted too).

``Reply.input_tokens`` is the *whole* prompt, cached tokens included (as OpenAI counts it); the
wire ``input_tokens`` is what is left after ``cache_read_tokens`` and ``cache_write_tokens``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from relaygate.testing._emulator import Emulator, Fault, Reply, split_text

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _dumps(payload) + b"\n\n"


class AnthropicEmulator(Emulator):
    """Emulates ``api.anthropic.com`` (and Anthropic-compatible servers)."""

    def __init__(self, *, models: list[str] | None = None, api_key: str | None = None) -> None:
        super().__init__(
            models=models or ["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"],
            api_key=api_key,
        )
        self._counter = 0

    async def __aenter__(self) -> AnthropicEmulator:
        await self.start()
        return self

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.list_models)

    # ------------------------------------------------------------------ helpers

    def _request_id(self) -> str:
        self._counter += 1
        return f"req_emu{self._counter:06d}"

    def error(
        self,
        status: int,
        message: str,
        *,
        etype: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        request_id = self._request_id()
        body = {
            "type": "error",
            "error": {"type": etype or _ERROR_TYPES.get(status, "api_error"), "message": message},
            "request_id": request_id,
        }
        return web.Response(
            status=status,
            body=_dumps(body),
            content_type="application/json",
            headers={"request-id": request_id, **(headers or {})},
        )

    def _gate(self, request: web.Request) -> web.Response | None:
        """Auth, then the version header, as the real API checks them."""
        if self.api_key is not None:
            key = request.headers.get("x-api-key")
            bearer = request.headers.get("Authorization", "")
            if key != self.api_key and bearer != f"Bearer {self.api_key}":
                return self.error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        return None

    async def list_models(self, request: web.Request) -> web.Response:
        denied = self._gate(request)
        if denied is not None:
            return denied
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m.replace("-", " ").title(),
                "created_at": "2025-09-29T00:00:00Z",
                "lifecycle": "active",
            }
            for m in self.models
        ]
        return web.json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    @staticmethod
    def _estimate_input(body: dict[str, Any]) -> int:
        sized = {k: body.get(k) for k in ("system", "messages", "tools")}
        return max(1, len(json.dumps(sized)) // 4)

    async def count_tokens(self, request: web.Request) -> web.Response:
        denied = self._gate(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "There was an error parsing the body of your request.")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self.error(400, "messages: Field required")
        return web.json_response({"input_tokens": self._estimate_input(body)})

    @staticmethod
    def _echo(body: dict[str, Any]) -> str:
        for message in reversed(body.get("messages") or []):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                return "echo: " + content
            if isinstance(content, list):
                texts = [b.get("text", "") for b in content if b.get("type") == "text"]
                if texts:
                    return "echo: " + " ".join(texts)
        return "echo: "

    def _usage(self, reply: Reply, body: dict[str, Any], text: str) -> dict[str, Any]:
        total = reply.input_tokens if reply.input_tokens is not None else self._estimate_input(body)
        fresh = max(0, total - reply.cache_read_tokens - reply.cache_write_tokens)
        output = (
            reply.output_tokens
            if reply.output_tokens is not None
            else max(1, (len(text) + len(reply.thinking or "")) // 4)
        )
        usage: dict[str, Any] = {
            "input_tokens": fresh,
            "cache_creation_input_tokens": reply.cache_write_tokens,
            "cache_read_input_tokens": reply.cache_read_tokens,
            "output_tokens": output,
        }
        if reply.reasoning_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
        return usage

    # ------------------------------------------------------------------ the endpoint

    async def messages(self, request: web.Request) -> web.StreamResponse:
        denied = self._gate(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "There was an error parsing the body of your request.")
        if not isinstance(body, dict):
            return self.error(400, "Input should be a valid dictionary")
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return self.error(400, f"{name}: Field required")
        model = body["model"]
        if not isinstance(body["max_tokens"], int) or isinstance(body["max_tokens"], bool):
            return self.error(400, "max_tokens: Input should be a valid integer")
        if self.models and model not in self.models:
            return self.error(404, f"model: {model}")

        item = self.next_item()
        fault: Fault | None = item if isinstance(item, Fault) else None
        reply: Reply = item if isinstance(item, Reply) else Reply()
        stream = body.get("stream") is True
        if fault is not None:
            await self.apply_fault_prelude(request, fault)
            if fault.status is not None:
                headers = {}
                if fault.retry_after is not None:
                    ra = fault.retry_after
                    headers["retry-after"] = str(int(ra)) if ra == int(ra) else str(ra)
                if fault.body is not None:
                    return web.Response(
                        status=fault.status,
                        body=fault.body,
                        headers=headers,
                        content_type="application/json",
                    )
                return self.error(fault.status, fault.message, headers=headers)
            if fault.malformed:
                if stream:
                    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                    await resp.prepare(request)
                    await resp.write(b"event: message_start\ndata: {not json\n\n")
                    await resp.write_eof()
                    return resp
                return web.Response(status=200, body=b"{not json", content_type="application/json")
            reply = fault.reply or reply

        text = (
            reply.text if reply.text is not None else ("" if reply.tool_calls else self._echo(body))
        )
        stop_reason = reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")
        stop_sequence = None
        if stop_reason == "stop_sequence":
            sequences = body.get("stop_sequences") or []
            stop_sequence = sequences[0] if sequences else None
        self._counter += 1
        ident = f"msg_emu{self._counter:06d}"
        usage = self._usage(reply, body, text)
        signature = reply.thinking_signature or (
            f"EmuSig{self._counter:06d}" if reply.thinking is not None else None
        )

        if fault is not None and fault.error_in_200:
            if not stream:
                return web.Response(
                    status=200,
                    content_type="application/json",
                    body=_dumps(
                        {
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": fault.message},
                        }
                    ),
                )
            # A 200 stream that breaks with Anthropic's error event after `cut_after` events
            # (default: right after message_start and ping).
            events = self._events(
                ident, model, reply, text, signature, stop_reason, stop_sequence, usage
            )
            keep = fault.cut_after if fault.cut_after is not None else 2
            broken = _event(
                "error",
                {"type": "error", "error": {"type": "overloaded_error", "message": fault.message}},
            )
            events = [*events[:keep], broken]
            return await self.stream_events(request, events, reply=reply)

        if stream:
            events = self._events(
                ident, model, reply, text, signature, stop_reason, stop_sequence, usage
            )
            return await self.stream_events(
                request, events, reply=reply, cut_after=fault.cut_after if fault else None
            )
        await self.first_byte_delay(reply)  # a client that gives up counts as a disconnect
        return web.json_response(
            {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": self._content(reply, text, signature),
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "usage": {**usage, "service_tier": "standard"},
            },
            headers={"request-id": self._request_id()},
        )

    @staticmethod
    def _content(reply: Reply, text: str, signature: str | None) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if reply.thinking is not None:
            content.append({"type": "thinking", "thinking": reply.thinking, "signature": signature})
        if text:
            content.append({"type": "text", "text": text})
        for i, call in enumerate(reply.tool_calls):
            arguments = json.loads(call.arguments_json() or "{}")
            content.append(
                {
                    "type": "tool_use",
                    "id": call.id or f"toolu_emu{i:02d}",
                    "name": call.name,
                    "input": arguments,
                }
            )
        return content

    def _events(
        self,
        ident: str,
        model: str,
        reply: Reply,
        text: str,
        signature: str | None,
        stop_reason: str,
        stop_sequence: str | None,
        usage: dict[str, Any],
    ) -> list[bytes]:
        start_usage = {
            k: usage[k]
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        }
        start_usage["output_tokens"] = 1
        out = [
            _event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": ident,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            ),
            _event("ping", {"type": "ping"}),
        ]
        index = 0

        def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            nonlocal index
            out.append(
                _event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                )
            )
            for delta in deltas:
                out.append(
                    _event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1

        if reply.thinking is not None:
            deltas: list[dict[str, Any]] = [
                {"type": "thinking_delta", "thinking": piece}
                for piece in split_text(reply.thinking, reply.chunk_size)
                if piece
            ]
            deltas.append({"type": "signature_delta", "signature": signature})
            block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
        if text:
            block(
                {"type": "text", "text": ""},
                [
                    {"type": "text_delta", "text": piece}
                    for piece in split_text(text, reply.chunk_size)
                ],
            )
        for i, call in enumerate(reply.tool_calls):
            args = call.arguments_json()
            fragments = [""] + [piece for piece in split_text(args, 7) if piece]
            block(
                {
                    "type": "tool_use",
                    "id": call.id or f"toolu_emu{i:02d}",
                    "name": call.name,
                    "input": {},
                },
                [{"type": "input_json_delta", "partial_json": f} for f in fragments],
            )
        out.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": usage,
                },
            )
        )
        out.append(_event("message_stop", {"type": "message_stop"}))
        return out
