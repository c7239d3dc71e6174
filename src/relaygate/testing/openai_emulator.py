"""An OpenAI Chat Completions upstream, faithful to the wire format.

* ``POST /v1/chat/completions`` (and ``/chat/completions``): non-stream objects and SSE chunks —
  role chunk first, content deltas, tool-call deltas (id/type/name in the first delta of each call,
  then argument fragments; parallel calls follow one another by ``index``), a finish chunk, then the usage
  chunk (``choices: []``) only when ``stream_options.include_usage`` is true, then ``[DONE]``.
* ``GET /v1/models``: the list object.
* Errors: ``{"error": {"message", "type", "param", "code"}}`` with OpenAI's statuses.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from relaygate.testing._emulator import Emulator, Fault, Reply, dumps, split_text

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}
_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


def openai_error(status: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "server_error"),
            "param": None,
            "code": _ERROR_CODES.get(status),
        }
    }


def model_list(models: list[str], owned_by: str) -> web.Response:
    """``GET /v1/models`` as OpenAI (Chat and Responses alike) answers it."""
    return web.json_response(
        {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": owned_by}
                for m in models
            ],
        }
    )


class OpenAIEmulator(Emulator):
    """Emulates ``api.openai.com/v1`` chat completions (and any OpenAI-compatible server)."""

    def __init__(
        self, *, models: list[str] | None = None, api_key: str | None = None, prefix: str = "/v1"
    ) -> None:
        super().__init__(models=models or ["gpt-4o-mini", "gpt-4.1"], api_key=api_key)
        self.prefix = prefix
        self._counter = 0

    def routes(self, app: web.Application) -> None:
        for p in {self.prefix, ""}:
            app.router.add_post(f"{p}/chat/completions", self.chat)
            app.router.add_get(f"{p}/models", self.list_models)
            app.router.add_post(f"{p}/embeddings", self.embeddings)

    # ------------------------------------------------------------------ helpers

    def _auth_error(self, request: web.Request) -> web.Response | None:
        return self.key_denied(
            request,
            lambda _: web.json_response(
                openai_error(401, "Incorrect API key provided: sk-***."), status=401
            ),
        )

    def _next_id(self) -> str:
        self._counter += 1
        return f"chatcmpl-emu{self._counter:06d}"

    async def list_models(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        return model_list(self.models, "emulator")

    @staticmethod
    def _echo(body: dict[str, Any]) -> str:
        for message in reversed(body.get("messages") or []):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return "echo: " + content
                if isinstance(content, list):
                    texts = [p.get("text", "") for p in content if p.get("type") == "text"]
                    return "echo: " + " ".join(texts)
        return "echo: "

    def _usage(self, reply: Reply, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = (
            reply.input_tokens
            if reply.input_tokens is not None
            else max(1, len(json.dumps(body.get("messages", []))) // 4)
        )
        completion = (
            reply.output_tokens if reply.output_tokens is not None else max(1, len(text) // 4)
        )
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": reply.cache_read_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """Deterministic vectors (from the text's bytes), in OpenAI's list shape."""
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                openai_error(400, "We could not parse the JSON body of your request."), status=400
            )
        item = self.next_item()
        if isinstance(item, Fault):
            answered = await self.answer_fault(
                request, item, error_body=openai_error, stream=False, malformed_event=None
            )
            if answered is not None:
                return answered
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else [str(x) for x in inputs or []]
        dims = int(body.get("dimensions") or 8)
        data = []
        for i, text in enumerate(texts):
            raw = (text.encode() or b"\0") * (dims // max(1, len(text.encode())) + 1)
            data.append(
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": [round(b / 255, 6) for b in raw[:dims]],
                }
            )
        tokens = sum(max(1, len(t) // 4) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # ------------------------------------------------------------------ the endpoint

    async def chat(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                openai_error(400, "We could not parse the JSON body of your request."), status=400
            )
        model = body.get("model")
        if not isinstance(model, str) or not body.get("messages"):
            return web.json_response(
                openai_error(400, "you must provide a model parameter"), status=400
            )
        if self.models and model not in self.models:
            return web.json_response(
                openai_error(
                    404, f"The model `{model}` does not exist or you do not have access to it."
                ),
                status=404,
            )
        item = self.next_item()
        fault: Fault | None = item if isinstance(item, Fault) else None
        reply: Reply = item if isinstance(item, Reply) else Reply()
        if fault is not None:
            answered = await self.answer_fault(
                request,
                fault,
                error_body=openai_error,
                stream=bool(body.get("stream")),
                malformed_event=b"data: {not json\n\n",
                error_in_200=not (body.get("stream") and fault.cut_after),
            )
            if answered is not None:
                return answered
            reply = fault.reply or reply
        text = (
            reply.text if reply.text is not None else ("" if reply.tool_calls else self._echo(body))
        )
        finish = reply.stop_reason or ("tool_calls" if reply.tool_calls else "stop")
        ident = self._next_id()
        created = int(time.time())
        usage = self._usage(reply, body, text)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = self._chunks(ident, created, model, reply, text, finish, usage, include_usage)
            if fault is not None and fault.error_in_200:
                # A failure after streaming started: OpenAI sends an error chunk and closes.
                error = b"data: " + dumps(openai_error(500, fault.message)) + b"\n\n"
                events = [*events[: fault.cut_after], error]
                return await self.stream_events(request, events, reply=reply)
            return await self.stream_events(
                request, events, reply=reply, cut_after=fault.cut_after if fault else None
            )
        await self.first_byte_delay(reply)  # a client that gives up counts as a disconnect
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text or None,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_emu{i}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json()},
                }
                for i, call in enumerate(reply.tool_calls)
            ]
        return web.json_response(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_emulator",
            }
        )

    def _chunks(
        self,
        ident: str,
        created: int,
        model: str,
        reply: Reply,
        text: str,
        finish: str,
        usage: dict[str, Any],
        include_usage: bool,
    ) -> list[bytes]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            obj: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_emulator",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                obj["usage"] = None
            return b"data: " + dumps(obj) + b"\n\n"

        out = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if text:
            for piece in split_text(text, reply.chunk_size):
                out.append(chunk({"content": piece}))
        for i, call in enumerate(reply.tool_calls):
            # As OpenAI streams parallel calls: each call's first delta carries id, type and
            # name with empty arguments; its argument fragments follow before the next call.
            out.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call.id or f"call_emu{i}",
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for piece in split_text(call.arguments_json(), 7):
                out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
        out.append(chunk({}, finish))
        if include_usage:
            out.append(
                b"data: "
                + dumps(
                    {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "service_tier": "default",
                        "system_fingerprint": "fp_emulator",
                        "choices": [],
                        "usage": usage,
                    }
                )
                + b"\n\n"
            )
        out.append(b"data: [DONE]\n\n")
        return out
