"""An OpenAI Responses upstream (``api.openai.com/v1/responses``), faithful to the wire format.

* ``POST /v1/responses`` (and ``/responses``): a Response object, or the SSE sequence
  ``response.created`` → ``response.in_progress`` → per output item ``response.output_item.added``
  … ``response.output_item.done`` → ``response.completed`` (``response.incomplete`` when the
  reply's ``stop_reason`` is ``max_output_tokens`` or ``content_filter``). Every event carries
  ``event:``, ``type`` and a running ``sequence_number``; OpenAI sends no pings.
  Output order: a reasoning item when ``Reply.thinking`` is set (summary streamed, and
  ``encrypted_content`` from ``Reply.thinking_signature`` in ``output_item.done``), the message,
  then one ``function_call`` item per tool call, arguments streamed in 7-character fragments.
* ``GET /v1/models``: the list object.
* Errors: ``{"error": {"message", "type", "param", "code"}}``; a bad key gets OpenAI's 401.
* Faults as in :mod:`relaygate.testing._emulator`; for a stream, ``error_in_200`` sends
  ``cut_after`` events (default: created and in_progress) then ``response.failed``.

Written from the wire format alone; it never imports :mod:`relaygate.dialects`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from relaygate.testing._emulator import Emulator, Fault, Reply, split_text

_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
_INCOMPLETE = frozenset({"max_output_tokens", "content_filter"})


def responses_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind, default_code = _ERRORS.get(status, ("server_error", None))
    return {
        "error": {"message": message, "type": kind, "param": param, "code": code or default_code}
    }


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class ResponsesEmulator(Emulator):
    """Emulates the OpenAI Responses API (and ``custom-openai-responses-compatible`` servers)."""

    def __init__(
        self, *, models: list[str] | None = None, api_key: str | None = None, prefix: str = "/v1"
    ) -> None:
        super().__init__(models=models or ["gpt-5-mini", "gpt-4.1"], api_key=api_key)
        self.prefix = prefix
        self._counter = 0

    def routes(self, app: web.Application) -> None:
        for p in {self.prefix, ""}:
            app.router.add_post(f"{p}/responses", self.create)
            app.router.add_get(f"{p}/models", self.list_models)

    # ------------------------------------------------------------------ helpers

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        message = (
            "Incorrect API key provided: sk-***. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        if "Authorization" not in request.headers:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        return web.json_response(responses_error(401, message), status=401)

    async def list_models(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1700000000, "owned_by": "system"}
                    for m in self.models
                ],
            }
        )

    @staticmethod
    def _echo(body: dict[str, Any]) -> str:
        given = body.get("input")
        if isinstance(given, str):
            return "echo: " + given
        for item in reversed(given if isinstance(given, list) else []):
            if not isinstance(item, dict) or item.get("role") != "user":
                continue
            content = item.get("content")
            if isinstance(content, str):
                return "echo: " + content
            if isinstance(content, list):
                texts = [p.get("text", "") for p in content if p.get("type") == "input_text"]
                return "echo: " + " ".join(texts)
        return "echo: "

    def _usage(self, reply: Reply, body: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = (
            reply.input_tokens
            if reply.input_tokens is not None
            else max(1, len(json.dumps(body.get("input", ""))) // 4)
        )
        completion = (
            reply.output_tokens
            if reply.output_tokens is not None
            else max(1, len(text) // 4) + reply.reasoning_tokens
        )
        return {
            "input_tokens": prompt,
            "input_tokens_details": {
                "cached_tokens": reply.cache_read_tokens,
                "cache_write_tokens": reply.cache_write_tokens,
            },
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
            "total_tokens": prompt + completion,
        }

    def _envelope(self, ident: str, created: int, body: dict[str, Any]) -> dict[str, Any]:
        """The Response object around the output: the request's settings echoed back."""
        reasoning = body.get("reasoning") or {}
        return {
            "id": ident,
            "object": "response",
            "created_at": created,
            "status": "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"],
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    def _items(self, ident: str, reply: Reply, text: str) -> list[dict[str, Any]]:
        """The completed output items, in the order the API produces them."""
        tail = ident.removeprefix("resp_")
        items: list[dict[str, Any]] = []
        if reply.thinking is not None:
            reasoning: dict[str, Any] = {
                "id": f"rs_{tail}",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": reply.thinking}]
                if reply.thinking
                else [],
            }
            if reply.thinking_signature is not None:
                reasoning["encrypted_content"] = reply.thinking_signature
            items.append(reasoning)
        if text:
            items.append(
                {
                    "id": f"msg_{tail}",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                    ],
                }
            )
        for i, call in enumerate(reply.tool_calls):
            items.append(
                {
                    "id": f"fc_{tail}{i}",
                    "type": "function_call",
                    "status": "completed",
                    "arguments": call.arguments_json(),
                    "call_id": call.id or f"call_emu{i}",
                    "name": call.name,
                }
            )
        return items

    # ------------------------------------------------------------------ the endpoint

    async def create(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                responses_error(
                    400,
                    "We could not parse the JSON body of your request. (HINT: "
                    "This likely means you aren't using your HTTP library correctly.)",
                ),
                status=400,
            )
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return web.json_response(
                responses_error(
                    400,
                    "Missing required parameter: 'model'.",
                    "model",
                    "missing_required_parameter",
                ),
                status=400,
            )
        model = body["model"]
        if "input" not in body and "previous_response_id" not in body:
            return web.json_response(
                responses_error(
                    400,
                    "Missing required parameter: 'input'.",
                    "input",
                    "missing_required_parameter",
                ),
                status=400,
            )
        if self.models and model not in self.models:
            return web.json_response(
                responses_error(
                    400,
                    f"The requested model '{model}' does not exist.",
                    "model",
                    "model_not_found",
                ),
                status=400,
            )
        item = self.next_item()
        fault: Fault | None = item if isinstance(item, Fault) else None
        reply: Reply = item if isinstance(item, Reply) else Reply()
        stream = bool(body.get("stream"))
        if fault is not None:
            await self.apply_fault_prelude(request, fault)
            if fault.status is not None:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                data = (
                    fault.body
                    if fault.body is not None
                    else _dumps(responses_error(fault.status, fault.message))
                )
                return web.Response(
                    status=fault.status, body=data, headers=headers, content_type="application/json"
                )
            if fault.malformed:
                if stream:
                    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                    await resp.prepare(request)
                    await resp.write(b"event: response.created\ndata: {not json\n\n")
                    await resp.write_eof()
                    return resp
                return web.Response(status=200, body=b"{not json", content_type="application/json")
            if fault.error_in_200 and not stream:
                return web.json_response(responses_error(500, fault.message), status=200)
            reply = fault.reply or reply

        text = (
            reply.text if reply.text is not None else ("" if reply.tool_calls else self._echo(body))
        )
        self._counter += 1
        ident = f"resp_emu{self._counter:06d}"
        created = int(time.time())
        envelope = self._envelope(ident, created, body)
        items = self._items(ident, reply, text)
        final = dict(
            envelope, output=items, usage=self._usage(reply, body, text), status="completed"
        )
        if reply.stop_reason in _INCOMPLETE:
            final["status"] = "incomplete"
            final["incomplete_details"] = {"reason": reply.stop_reason}
        if stream:
            events = self._events(envelope, final, items, reply)
            if fault is not None and fault.error_in_200:
                keep = fault.cut_after if fault.cut_after is not None else 2
                failed = dict(
                    envelope,
                    status="failed",
                    error={"code": "server_error", "message": fault.message},
                )
                events = [*events[:keep], self._sse("response.failed", {"response": failed}, keep)]
                return await self.stream_events(request, events, reply=reply)
            return await self.stream_events(
                request, events, reply=reply, cut_after=fault.cut_after if fault else None
            )
        await self.first_byte_delay(reply)  # a client that gives up counts as a disconnect
        return web.json_response(final)

    @staticmethod
    def _sse(kind: str, fields: dict[str, Any], seq: int) -> bytes:
        payload = {"type": kind, **fields, "sequence_number": seq}
        return b"event: " + kind.encode() + b"\ndata: " + _dumps(payload) + b"\n\n"

    def _events(
        self,
        envelope: dict[str, Any],
        final: dict[str, Any],
        items: list[dict[str, Any]],
        reply: Reply,
    ) -> list[bytes]:
        out: list[bytes] = []

        def emit(kind: str, **fields: Any) -> None:
            out.append(self._sse(kind, fields, len(out)))

        emit("response.created", response=envelope)
        emit("response.in_progress", response=envelope)
        for n, item in enumerate(items):
            ids = {"item_id": item["id"], "output_index": n}
            if item["type"] == "reasoning":
                emit(
                    "response.output_item.added",
                    output_index=n,
                    item={"id": item["id"], "type": "reasoning", "summary": []},
                )
                for s, summary in enumerate(item["summary"]):
                    part = {"type": "summary_text", "text": ""}
                    emit("response.reasoning_summary_part.added", **ids, summary_index=s, part=part)
                    for piece in split_text(summary["text"], reply.chunk_size):
                        emit(
                            "response.reasoning_summary_text.delta",
                            **ids,
                            summary_index=s,
                            delta=piece,
                            obfuscation="emu",
                        )
                    emit(
                        "response.reasoning_summary_text.done",
                        **ids,
                        summary_index=s,
                        text=summary["text"],
                    )
                    emit(
                        "response.reasoning_summary_part.done", **ids, summary_index=s, part=summary
                    )
            elif item["type"] == "message":
                emit(
                    "response.output_item.added",
                    output_index=n,
                    item=dict(item, status="in_progress", content=[]),
                )
                for c, part in enumerate(item["content"]):
                    emit(
                        "response.content_part.added",
                        **ids,
                        content_index=c,
                        part=dict(part, text=""),
                    )
                    for piece in split_text(part["text"], reply.chunk_size):
                        emit(
                            "response.output_text.delta",
                            **ids,
                            content_index=c,
                            delta=piece,
                            logprobs=[],
                            obfuscation="emu",
                        )
                    emit(
                        "response.output_text.done",
                        **ids,
                        content_index=c,
                        text=part["text"],
                        logprobs=[],
                    )
                    emit("response.content_part.done", **ids, content_index=c, part=part)
            else:
                emit(
                    "response.output_item.added",
                    output_index=n,
                    item=dict(item, status="in_progress", arguments=""),
                )
                for piece in split_text(item["arguments"], 7):
                    emit(
                        "response.function_call_arguments.delta",
                        **ids,
                        delta=piece,
                        obfuscation="emu",
                    )
                emit("response.function_call_arguments.done", **ids, arguments=item["arguments"])
            emit("response.output_item.done", output_index=n, item=item)
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        emit(kind, response=final)
        return out
