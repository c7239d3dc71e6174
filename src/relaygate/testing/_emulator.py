"""The machinery every upstream emulator shares: a real aiohttp server on loopback, a queue of
scripted replies and faults, and a record of what arrived.

Emulators render replies with their *own* code, never with relaygate's dialect modules, so a
test that goes relaygate → emulator checks relaygate against an independent reading of the wire
format.

Example::

    async with OpenAIEmulator() as upstream:
        upstream.script(Reply(text="hello"))
        upstream.script(Fault(status=429, retry_after=2))
        ...  # point a backend at upstream.base_url
        assert upstream.requests[0].json["model"] == "gpt-4o-mini"
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] | str
    id: str | None = None

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass
class Reply:
    """What the emulated model answers. Empty ``text`` and no tool calls → an echo of the last
    user text (``"echo: …"``)."""

    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    thinking: str | None = None
    thinking_signature: str | None = None
    stop_reason: str | None = None  # provider-native value; default chosen by the emulator
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    chunk_size: int = 4  # characters per streamed text delta
    delay: float = 0.0  # seconds between streamed events
    first_delay: float = 0.0  # seconds before the first byte (headers included)


@dataclass
class Fault:
    """A failure to inject instead of (or in the middle of) a reply.

    * ``status`` + ``body``: an HTTP error with the provider's own error body unless ``body`` is
      given; ``retry_after`` adds the header.
    * ``cut_after``: stream this many events of ``reply`` then drop the connection.
    * ``reset``: close the connection before answering (a reset mid-request).
    * ``malformed``: a 200 whose body (or first stream event) is not JSON.
    * ``error_in_200``: a 200 whose JSON body is the provider's error shape. For a stream with
      ``cut_after`` (Anthropic and Responses: also without it), ``cut_after`` events of
      ``reply`` then the provider's own mid-stream error event (OpenAI and Gemini: an
      ``{"error": …}`` chunk; Anthropic: ``event: error``; Responses: ``response.failed``).
    * ``hang``: never answer (the client's timeout must fire).
    """

    status: int | None = None
    message: str = "emulated failure"
    body: bytes | None = None
    retry_after: float | None = None
    cut_after: int | None = None
    reset: bool = False
    malformed: bool = False
    error_in_200: bool = False
    hang: bool = False
    reply: Reply | None = None


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Emulator:
    """Base class: subclasses add routes in :meth:`routes` and render replies."""

    def __init__(self, *, models: list[str] | None = None, api_key: str | None = None) -> None:
        self.models = models or []
        self.api_key = api_key  # when set, requests without it get the provider's 401
        self.requests: list[Recorded] = []
        self.disconnects = 0  # streams whose client went away before the end
        self.completed_streams = 0
        self._script: deque[Reply | Fault] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.open_streams = 0

    # ------------------------------------------------------------------ scripting

    def script(self, *items: Reply | Fault) -> None:
        """Queue replies or faults; each request takes the next one (then the default echo)."""
        self._script.extend(items)

    def next_item(self) -> Reply | Fault | None:
        return self._script.popleft() if self._script else None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._record])
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        response: web.StreamResponse = await handler(request)
        return response

    # ------------------------------------------------------------------ helpers for subclasses

    @staticmethod
    def last_user_text(texts: list[str]) -> str:
        return texts[-1] if texts else ""

    async def apply_fault_prelude(self, request: web.Request, fault: Fault) -> None:
        """Faults that act before any answer: hang and reset."""
        if fault.hang:
            await asyncio.sleep(3600)
        if fault.reset:
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError

    def key_denied(
        self,
        request: web.Request,
        deny: Callable[[str | None], web.Response],
        *,
        headers: Sequence[tuple[str, str]] = (("Authorization", "Bearer "),),
        query: str | None = None,
    ) -> web.Response | None:
        """The provider's refusal when ``api_key`` is set and no credential matches, else None.

        ``headers`` are ``(name, prefix)`` pairs, any of which may carry ``prefix + api_key``;
        ``query`` names a URL parameter consulted only when no header credential came. ``deny``
        gets the credential presented (the first one found; None when there was none), as
        providers word "missing" and "wrong" differently."""
        if self.api_key is None:
            return None
        presented: str | None = None
        for name, prefix in headers:
            value = request.headers.get(name)
            if value is None:
                continue
            if value == prefix + self.api_key:
                return None
            presented = value if presented is None else presented
        if presented is None and query is not None:
            presented = request.query.get(query)
            if presented == self.api_key:
                return None
        return deny(presented)

    async def answer_fault(
        self,
        request: web.Request,
        fault: Fault,
        *,
        error_body: Callable[[int, str], dict[str, Any]],
        stream: bool,
        malformed_event: bytes | None,
        stream_type: str = "text/event-stream",
        malformed_body: bytes = b"{not json",
        error_reply: Callable[[Fault, dict[str, str]], web.Response] | None = None,
        retry_header: str | None = "Retry-After",
        retry_value: Callable[[float], str] = str,
        error_in_200: bool = True,
    ) -> web.StreamResponse | None:
        """Answer the faults every emulator answers alike; None when ``fault`` shapes the reply
        itself (``cut_after``, a provider's own mid-stream error, ``reply``).

        * hang / reset (:meth:`apply_fault_prelude`);
        * ``status``: ``fault.body`` or the compact ``error_body(status, message)`` (or
          ``error_reply(fault, headers)`` where a provider adds more), with ``retry_header``;
        * ``malformed``: a stream whose first event is ``malformed_event`` (None: the plain
          ``malformed_body`` even for streams), else a 200 ``malformed_body``;
        * ``error_in_200`` (unless the caller handles it): a 200 whose body is the error shape.
        """
        await self.apply_fault_prelude(request, fault)
        if fault.status is not None:
            headers: dict[str, str] = {}
            if fault.retry_after is not None and retry_header is not None:
                headers[retry_header] = retry_value(fault.retry_after)
            if fault.body is None and error_reply is not None:
                return error_reply(fault, headers)
            body = fault.body
            if body is None:
                body = dumps(error_body(fault.status, fault.message))
            return web.Response(
                status=fault.status, body=body, headers=headers, content_type="application/json"
            )
        if fault.malformed:
            if stream and malformed_event is not None:
                response = web.StreamResponse(headers={"Content-Type": stream_type})
                await response.prepare(request)
                await response.write(malformed_event)
                await response.write_eof()
                return response
            return web.Response(status=200, body=malformed_body, content_type="application/json")
        if fault.error_in_200 and error_in_200:
            return web.json_response(error_body(500, fault.message), status=200)
        return None

    async def stream_events(
        self,
        request: web.Request,
        events: list[bytes],
        *,
        reply: Reply,
        cut_after: int | None = None,
        content_type: str = "text/event-stream",
    ) -> web.StreamResponse:
        """Send pre-rendered SSE blocks with the reply's pacing; count disconnects."""
        await self.first_byte_delay(reply)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        self.open_streams += 1
        try:
            for i, block in enumerate(events):
                if cut_after is not None and i >= cut_after:
                    transport = request.transport
                    if transport is not None:
                        transport.abort()
                    return response
                await response.write(block)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
            await response.write_eof()
            self.completed_streams += 1
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            raise
        finally:
            self.open_streams -= 1
        return response

    async def first_byte_delay(self, reply: Reply) -> None:
        """Wait ``reply.first_delay`` before answering; a client that gives up meanwhile (a
        timeout, a lost race or hedge) counts as a disconnect."""
        if not reply.first_delay:
            return
        try:
            await asyncio.sleep(reply.first_delay)
        except asyncio.CancelledError:
            self.disconnects += 1
            raise

    async def wait_for_disconnects(self, n: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``n`` streams saw their client go away (no sleep-based guessing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.disconnects < n:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True


def dumps(obj: Any) -> bytes:
    """Compact JSON, as providers put it on the wire."""
    return json.dumps(obj, separators=(",", ":")).encode()


def split_text(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
