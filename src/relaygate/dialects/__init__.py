"""Dialects: one module per wire format, pure functions both ways over :mod:`relaygate.canonical`.

Every dialect module exposes the same surface (see :class:`Dialect`), so the server and the
backends never special-case one:

client side
    ``parse_request(body) -> Request`` · ``render_response(Response) -> bytes`` ·
    ``StreamRenderer(model).feed(event) -> bytes`` (``.error(err) -> bytes`` ends a broken stream) ·
    ``render_error(GatewayError) -> bytes`` · ``render_models(list[ModelInfo]) -> bytes`` ·
    ``StreamWatch().feed(raw_chunk)`` scans a same-dialect stream for usage and its terminal event.
upstream side
    ``build_request(Request, native_model) -> dict`` · ``parse_response(dict) -> Response`` ·
    ``response_usage(dict) -> Usage`` (parse_response's error checks, usage only: the relay) ·
    ``StreamParser().feed(SSEEvent) -> list[StreamEvent]`` (``.finish()`` at end of stream) ·
    ``parse_error(status, body) -> GatewayError``.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from relaygate.canonical import GatewayError, ModelInfo, Request, Response, StreamEvent, Usage
from relaygate.dialects.sse import SSEEvent

OPENAI_CHAT = "openai-chat"
OPENAI_RESPONSES = "openai-responses"
ANTHROPIC = "anthropic"
GEMINI = "gemini"

_MODULES = {
    OPENAI_CHAT: "relaygate.dialects.openai_chat",
    OPENAI_RESPONSES: "relaygate.dialects.openai_responses",
    ANTHROPIC: "relaygate.dialects.anthropic",
    GEMINI: "relaygate.dialects.gemini",
}


class StreamRenderer(Protocol):
    def feed(self, event: StreamEvent) -> bytes: ...

    def error(self, err: GatewayError) -> bytes: ...


class StreamParser(Protocol):
    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


class StreamWatch(Protocol):
    """Reads a same-dialect stream as it is relayed. ``complete``: it reached its success
    terminal. ``error``: it ended with the upstream's own terminal error event, which already
    went out to the client (so no second one may follow); an ``owed`` attribute, when a watch
    has one, holds the bytes the client's stream still lacks after that event."""

    usage: Usage
    complete: bool
    error: GatewayError | None

    def feed(self, chunk: bytes) -> None: ...


class Dialect(Protocol):
    NAME: str
    CONTENT_TYPE_STREAM: str

    def parse_request(self, body: dict[str, Any]) -> Request: ...

    def render_response(self, response: Response) -> bytes: ...

    def make_renderer(self, model: str) -> StreamRenderer: ...

    def render_error(self, err: GatewayError) -> bytes: ...

    def render_models(self, models: list[ModelInfo]) -> bytes: ...

    def make_watch(self) -> StreamWatch: ...

    def build_request(self, request: Request, native_model: str) -> dict[str, Any]: ...

    def parse_response(self, body: dict[str, Any]) -> Response: ...

    def response_usage(self, body: dict[str, Any]) -> Usage: ...

    def make_parser(self) -> StreamParser: ...

    def parse_error(self, status: int, body: bytes) -> GatewayError: ...


def get(name: str) -> Dialect:
    """The dialect module called ``name`` (``openai-chat``, ``anthropic``, …)."""
    module: Any = importlib.import_module(_MODULES[name])
    return module  # type: ignore[no-any-return]


__all__ = [
    "ANTHROPIC",
    "GEMINI",
    "OPENAI_CHAT",
    "OPENAI_RESPONSES",
    "Dialect",
    "StreamParser",
    "StreamRenderer",
    "StreamWatch",
    "get",
]
