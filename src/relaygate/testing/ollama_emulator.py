"""An Ollama server, faithful to its native API (not the ``/v1`` OpenAI shim).

* ``POST /api/chat``: with ``"stream": false`` one JSON object; otherwise (Ollama's default)
  ``application/x-ndjson``, one object per line — ``{"message": {"role": "assistant",
  "content": "<delta>"}, "done": false}`` … then a last line with ``"done": true``,
  ``done_reason`` and the counters ``prompt_eval_count`` / ``eval_count``. Tool calls arrive whole
  in one line's ``message.tool_calls`` with ``arguments`` as a JSON *object*.
* ``GET /api/tags``: ``{"models": [{"name", "model", "modified_at", "size", "digest", "details"}]}``.
* Errors: ``{"error": "<text>"}`` (404 for an unknown model, 400 for bad bodies); a failure
  after streaming started arrives as an ``{"error": …}`` line.
* Auth: none locally; when ``api_key`` is set (ollama.com), ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from relaygate.testing._emulator import Emulator, Fault, Reply, split_text


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OllamaEmulator(Emulator):
    def __init__(self, *, models: list[str] | None = None, api_key: str | None = None) -> None:
        super().__init__(models=models or ["llama3.2:3b", "qwen2.5:0.5b"], api_key=api_key)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self.chat)
        app.router.add_get("/api/tags", self.tags)

    def _denied(self, request: web.Request) -> web.Response | None:
        if self.api_key is not None and (
            request.headers.get("Authorization") != f"Bearer {self.api_key}"
        ):
            return web.json_response({"error": "unauthorized"}, status=401)
        return None

    async def tags(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        return web.json_response(
            {
                "models": [
                    {
                        "name": m,
                        "model": m,
                        "modified_at": "2025-01-01T00:00:00Z",
                        "size": 1_000_000,
                        "digest": f"{i:064x}",
                        "details": {"format": "gguf", "family": m.split(":")[0]},
                    }
                    for i, m in enumerate(self.models)
                ]
            }
        )

    @staticmethod
    def _echo(body: dict[str, Any]) -> str:
        for message in reversed(body.get("messages") or []):
            if message.get("role") == "user":
                return "echo: " + str(message.get("content", ""))
        return "echo: "

    async def chat(self, request: web.Request) -> web.StreamResponse:
        denied = self._denied(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid character looking for value"}, status=400)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return web.json_response({"error": "model is required"}, status=400)
        if self.models and model not in self.models:
            return web.json_response(
                {"error": f"model '{model}' not found, try pulling it first"}, status=404
            )
        item = self.next_item()
        fault = item if isinstance(item, Fault) else None
        reply = item if isinstance(item, Reply) else Reply()
        if fault is not None:
            await self.apply_fault_prelude(request, fault)
            if fault.status is not None:
                data = fault.body or _line({"error": fault.message})
                return web.Response(status=fault.status, body=data, content_type="application/json")
            if fault.malformed:
                return web.Response(
                    status=200, body=b"{not json\n", content_type="application/json"
                )
            if fault.error_in_200:
                return web.json_response({"error": fault.message}, status=200)
            reply = fault.reply or reply
        text = (
            reply.text if reply.text is not None else ("" if reply.tool_calls else self._echo(body))
        )
        prompt_tokens = reply.input_tokens or max(1, len(json.dumps(body["messages"])) // 4)
        eval_tokens = reply.output_tokens or max(1, len(text) // 4)
        done_reason = reply.stop_reason or "stop"
        tool_calls = [
            {"function": {"name": c.name, "arguments": c.arguments}} for c in reply.tool_calls
        ]
        final = {
            "model": model,
            "created_at": _now(),
            "done": True,
            "done_reason": done_reason,
            "total_duration": 1_000_000,
            "load_duration": 10_000,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": 100_000,
            "eval_count": eval_tokens,
            "eval_duration": 800_000,
        }
        if body.get("stream", True) is False:
            await self.first_byte_delay(reply)  # a client that gives up counts as a disconnect
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if reply.thinking:
                message["thinking"] = reply.thinking
            if tool_calls:
                message["tool_calls"] = tool_calls
            return web.json_response({**final, "message": message})
        lines: list[bytes] = []
        if reply.thinking:
            for piece in split_text(reply.thinking, reply.chunk_size):
                lines.append(
                    _line(
                        {
                            "model": model,
                            "created_at": _now(),
                            "message": {"role": "assistant", "content": "", "thinking": piece},
                            "done": False,
                        }
                    )
                )
        if text:
            for piece in split_text(text, reply.chunk_size):
                lines.append(
                    _line(
                        {
                            "model": model,
                            "created_at": _now(),
                            "message": {"role": "assistant", "content": piece},
                            "done": False,
                        }
                    )
                )
        if tool_calls:
            lines.append(
                _line(
                    {
                        "model": model,
                        "created_at": _now(),
                        "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                        "done": False,
                    }
                )
            )
        lines.append(_line({**final, "message": {"role": "assistant", "content": ""}}))
        if fault is not None and fault.cut_after is not None and fault.message:
            # Ollama reports a failure after the headers as an error line, then closes.
            lines = [*lines[: fault.cut_after], _line({"error": fault.message})]
            return await self.stream_events(
                request, lines, reply=reply, content_type="application/x-ndjson"
            )
        return await self.stream_events(
            request, lines, reply=reply, content_type="application/x-ndjson"
        )
