"""A Gemini (Google AI Studio / ``generativelanguage.googleapis.com``) upstream, faithful to the
wire format.

* ``POST /v1beta/models/{model}:generateContent``: one ``GenerateContentResponse``.
* ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``: SSE, ``data: {chunk}`` blocks
  ended by CRLF CRLF, no event names, no ping, no ``[DONE]``; every chunk is a whole
  ``GenerateContentResponse`` with ``usageMetadata``; thoughts first, then text deltas; parallel
  function calls arrive whole, together, in one chunk; the last chunk has ``finishReason`` and
  the full usage. Without ``alt=sse`` the same chunks are written as a JSON array
  (``[{…}\\r\\n,{…}]``).
* ``POST /v1beta/models/{model}:countTokens`` → ``{"totalTokens": n}``.
* ``GET /v1beta/models`` (and ``/v1beta/models/{model}``); everything also under ``/v1``.
* Auth: ``x-goog-api-key`` header or ``?key=``. A wrong key is a **400** ``INVALID_ARGUMENT``
  with reason ``API_KEY_INVALID``; no key at all is a 403 ``PERMISSION_DENIED``.
* Errors: ``{"error": {"code", "message", "status"[, "details"]}}``.

Thought signatures sit where Gemini puts them: on the first function call of a turn, else on the
last text part (streamed: an empty text part of the final chunk).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from relaygate.testing._emulator import Emulator, Fault, Reply, split_text

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def gemini_error(
    status: int, message: str, *, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
    }
    if details:
        error["details"] = details
    return {"error": error}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=_dumps(body), headers=headers, content_type="application/json"
    )


class GeminiEmulator(Emulator):
    """Emulates the Gemini Developer API (``/v1beta`` and ``/v1``)."""

    def __init__(self, *, models: list[str] | None = None, api_key: str | None = None) -> None:
        super().__init__(models=models or ["gemini-2.5-flash", "gemini-2.5-pro"], api_key=api_key)
        self._counter = 0

    async def __aenter__(self) -> GeminiEmulator:
        await self.start()
        return self

    def routes(self, app: web.Application) -> None:
        for version in ("/v1beta", "/v1"):
            app.router.add_get(f"{version}/models", self.list_models)
            app.router.add_get(f"{version}/models/{{name:[^:]+}}", self.get_model)
            app.router.add_post(f"{version}/models/{{tail:.+}}", self.model_method)

    # ------------------------------------------------------------------ helpers

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key is None:
            return _error_response(
                403,
                gemini_error(
                    403,
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity to call "
                    "this API.",
                ),
            )
        if key != self.api_key:
            return _error_response(
                400,
                gemini_error(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    details=[
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                            "metadata": {"service": "generativelanguage.googleapis.com"},
                        },
                        {
                            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                            "locale": "en-US",
                            "message": "API key not valid. Please pass a valid API key.",
                        },
                    ],
                ),
            )
        return None

    def _model_object(self, model: str) -> dict[str, Any]:
        return {
            "name": f"models/{model}",
            "baseModelId": model,
            "version": "001",
            "displayName": model.replace("-", " ").title(),
            "description": f"Emulated {model}",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
            "thinking": True,
        }

    def _not_found(self, model: str, method: str) -> web.Response:
        return _error_response(
            404,
            gemini_error(
                404,
                f"models/{model} is not found for API version v1beta, or is not supported for "
                f"{method}. Call ListModels to see the list of available models and their "
                "supported methods.",
            ),
        )

    def _next_id(self) -> str:
        self._counter += 1
        return f"emu-gemini-{self._counter:06d}"

    async def list_models(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        return web.json_response({"models": [self._model_object(m) for m in self.models]})

    async def get_model(self, request: web.Request) -> web.Response:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        name = request.match_info["name"]
        if self.models and name not in self.models:
            return self._not_found(name, "getModel")
        return web.json_response(self._model_object(name))

    @staticmethod
    def _texts(body: dict[str, Any]) -> list[str]:
        for content in reversed(body.get("contents") or []):
            if isinstance(content, dict) and content.get("role", "user") == "user":
                texts = [
                    p["text"]
                    for p in content.get("parts") or []
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                ]
                if texts:
                    return texts
        return []

    @staticmethod
    def _prompt_tokens(body: dict[str, Any]) -> int:
        return max(1, len(json.dumps(body.get("contents", []))) // 4)

    def _usage(
        self, reply: Reply, body: dict[str, Any], text: str, final: bool = True
    ) -> dict[str, Any]:
        prompt = reply.input_tokens if reply.input_tokens is not None else self._prompt_tokens(body)
        usage: dict[str, Any] = {"promptTokenCount": prompt}
        if not final:  # intermediate chunks report the prompt only
            usage["totalTokenCount"] = prompt
            return usage
        # Reply.output_tokens counts reasoning too; Gemini's candidatesTokenCount does not.
        output = reply.output_tokens if reply.output_tokens is not None else max(1, len(text) // 4)
        candidates = max(0, output - reply.reasoning_tokens)
        usage["candidatesTokenCount"] = candidates
        usage["totalTokenCount"] = prompt + candidates + reply.reasoning_tokens
        if reply.cache_read_tokens:
            usage["cachedContentTokenCount"] = reply.cache_read_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
        if reply.reasoning_tokens:
            usage["thoughtsTokenCount"] = reply.reasoning_tokens
        return usage

    # ------------------------------------------------------------------ the endpoint

    async def model_method(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        model, _, method = tail.rpartition(":")
        if method not in _METHODS or not model:
            return _error_response(404, gemini_error(404, f"Method not found: {tail}"))
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return _error_response(
                400,
                gemini_error(400, "Invalid JSON payload received. Unexpected token."),
            )
        if not isinstance(body, dict):
            return _error_response(400, gemini_error(400, "Invalid JSON payload received."))
        if self.models and model not in self.models:
            return self._not_found(model, method)
        if method == "countTokens":
            inner = body.get("generateContentRequest") or body
            if "contents" not in inner:
                return _error_response(
                    400,
                    gemini_error(400, "* CountTokensRequest.contents: contents is not specified\n"),
                )
            total = self._prompt_tokens(inner)
            return web.json_response(
                {
                    "totalTokens": total,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}],
                }
            )
        if not body.get("contents"):
            return _error_response(
                400,
                gemini_error(
                    400,
                    "* GenerateContentRequest.contents: contents is not specified\n",
                    details=[
                        {
                            "@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [
                                {"field": "contents", "description": "contents is not specified"}
                            ],
                        }
                    ],
                ),
            )
        streaming = method == "streamGenerateContent"
        sse = request.query.get("alt") == "sse"
        item = self.next_item()
        fault: Fault | None = item if isinstance(item, Fault) else None
        reply: Reply = item if isinstance(item, Reply) else Reply()
        if fault is not None:
            await self.apply_fault_prelude(request, fault)
            if fault.status is not None:
                return self._status_fault(fault)
            if fault.malformed:
                if streaming:
                    resp = web.StreamResponse(
                        headers={"Content-Type": "text/event-stream" if sse else "application/json"}
                    )
                    await resp.prepare(request)
                    await resp.write(b"data: {not json\r\n\r\n" if sse else b"[{not json")
                    await resp.write_eof()
                    return resp
                return web.Response(status=200, body=b"{not json", content_type="application/json")
            if fault.error_in_200:
                error = gemini_error(500, fault.message)
                if streaming:
                    frame = (
                        b"data: " + _dumps(error) + b"\r\n\r\n"
                        if sse
                        else b"[" + _dumps(error) + b"]"
                    )
                    return await self.stream_events(
                        request,
                        [frame],
                        reply=reply,
                        content_type="text/event-stream" if sse else "application/json",
                    )
                return web.json_response(error, status=200)
            reply = fault.reply or reply
        text = (
            reply.text
            if reply.text is not None
            else ("" if reply.tool_calls else "echo: " + " ".join(self._texts(body)))
        )
        ident = self._next_id()
        version = model
        if streaming:
            chunks = self._chunks(ident, version, reply, body, text)
            if sse:
                frames = [b"data: " + _dumps(c) + b"\r\n\r\n" for c in chunks]
            else:
                frames = [(b"[" if i == 0 else b"\r\n,") + _dumps(c) for i, c in enumerate(chunks)]
                frames[-1] += b"]"
            return await self.stream_events(
                request,
                frames,
                reply=reply,
                cut_after=fault.cut_after if fault else None,
                content_type="text/event-stream" if sse else "application/json",
            )
        await self.first_byte_delay(reply)  # a client that gives up counts as a disconnect
        parts: list[dict[str, Any]] = []
        if reply.thinking:
            parts.append({"text": reply.thinking, "thought": True})
        parts.extend(self._call_parts(reply))
        if text:
            parts.append({"text": text})
        self._sign(parts, reply)
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"parts": parts, "role": "model"},
                        "finishReason": reply.stop_reason or "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": self._usage(reply, body, text),
                "modelVersion": version,
                "responseId": ident,
            }
        )

    def _status_fault(self, fault: Fault) -> web.Response:
        assert fault.status is not None
        headers: dict[str, str] = {}
        details: list[dict[str, Any]] = []
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{fault.retry_after:g}s",
                }
            )
        data = (
            fault.body
            if fault.body is not None
            else _dumps(gemini_error(fault.status, fault.message, details=details))
        )
        return web.Response(
            status=fault.status, body=data, headers=headers, content_type="application/json"
        )

    @staticmethod
    def _call_parts(reply: Reply) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for call in reply.tool_calls:
            args = (
                call.arguments
                if isinstance(call.arguments, dict)
                else json.loads(call.arguments or "{}")
            )
            function_call: dict[str, Any] = {"name": call.name, "args": args}
            if call.id is not None:
                function_call["id"] = call.id
            parts.append({"functionCall": function_call})
        return parts

    @staticmethod
    def _sign(parts: list[dict[str, Any]], reply: Reply) -> None:
        """Put the signature where Gemini does: first function call, else the last text part."""
        if not reply.thinking_signature:
            return
        for part in parts:
            if "functionCall" in part:
                part["thoughtSignature"] = reply.thinking_signature
                return
        for part in reversed(parts):
            if "text" in part and not part.get("thought"):
                part["thoughtSignature"] = reply.thinking_signature
                return
        parts.append({"text": "", "thoughtSignature": reply.thinking_signature})

    def _chunks(
        self, ident: str, version: str, reply: Reply, body: dict[str, Any], text: str
    ) -> list[dict[str, Any]]:
        def chunk(parts: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
                "usageMetadata": self._usage(reply, body, text, final=False),
                "modelVersion": version,
                "responseId": ident,
            }

        out: list[dict[str, Any]] = []
        if reply.thinking:
            out.extend(
                chunk([{"text": piece, "thought": True}])
                for piece in split_text(reply.thinking, max(reply.chunk_size, 16))
            )
        if text:
            out.extend(chunk([{"text": piece}]) for piece in split_text(text, reply.chunk_size))
        calls = self._call_parts(reply)
        if calls:
            if reply.thinking_signature:
                calls[0]["thoughtSignature"] = reply.thinking_signature
            out.append(chunk(calls))  # parallel calls arrive whole, in one chunk
        elif reply.thinking_signature:
            out.append(chunk([{"text": "", "thoughtSignature": reply.thinking_signature}]))
        if not out:
            out.append(chunk([{"text": ""}]))
        last = out[-1]
        last["candidates"][0]["finishReason"] = reply.stop_reason or "STOP"
        last["usageMetadata"] = self._usage(reply, body, text)
        return out
