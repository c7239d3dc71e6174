"""Small ASGI helpers for the hot path (no Starlette request/response objects there)."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from relaygate import dialects
from relaygate.canonical import ErrorKind, GatewayError
from relaygate.routing.cancel import DisconnectWatch

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_CT = (b"content-type", b"application/json")


class ClientDisconnected(Exception):
    pass


# Generated request ids: a random per-process prefix and a counter, 32 hex characters like a
# uuid4's hex, unique across workers and restarts, at a fraction of uuid4's cost.
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


def next_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, or a 413 :class:`GatewayError` past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise GatewayError(
                    ErrorKind.REQUEST_TOO_LARGE,
                    f"Request body is larger than the {limit} byte limit (server.max_body_bytes).",
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def dialect_for_path(path: str) -> str:
    """Which dialect a client speaks, judged by the path it called (for error rendering)."""
    if path.startswith("/v1/messages"):
        return dialects.ANTHROPIC
    if path.startswith("/v1/responses"):
        return dialects.OPENAI_RESPONSES
    if path.startswith("/v1beta/") or (
        path.startswith("/v1/models/") and ":" in path.rsplit("/", 1)[-1]
    ):
        return dialects.GEMINI
    return dialects.OPENAI_CHAT


async def send_error(
    send: Send, path: str, err: GatewayError, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """``err`` in the dialect of the client that called ``path``."""
    if path.startswith("/api/"):  # the admin API's envelope (see relaygate.server.admin)
        from relaygate.server.envelope import error_body

        body = error_body(err)
    else:
        try:
            body = dialects.get(dialect_for_path(path)).render_error(err)
        except (ImportError, KeyError):
            body = dialects.get(dialects.OPENAI_CHAT).render_error(err)
    extra = list(headers or [])
    if err.retry_after is not None:
        extra.append((b"retry-after", str(max(1, int(err.retry_after + 0.999))).encode()))
    await send_bytes(send, err.status, body, extra)


async def stream_response(
    send: Send,
    chunks: AsyncIterator[bytes],
    headers: list[tuple[bytes, bytes]],
    content_type: bytes,
    watch: DisconnectWatch,
    on_disconnect: Callable[[], Awaitable[None]],
    is_final: Callable[[], bool] | None = None,
) -> bool:
    """Relay ``chunks``; returns False if the client went away first (``watch`` cancels this
    task, then ``on_disconnect`` runs at once, so the upstream connection is closed, not left
    to the garbage collector). When ``is_final()`` says the chunk just received ends the
    stream, it is sent together with the end of the response (one write instead of two); the
    rest of ``chunks`` is drained."""
    try:
        if watch.gone:
            raise ClientDisconnected
        watch.arm()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                    *headers,
                ],
            }
        )
        ended = False
        async for chunk in chunks:
            if ended:
                continue  # past the terminal event: let the relay finish its bookkeeping
            if is_final is not None and is_final():
                ended = True
                # The response is complete: a disconnect now must not cancel the drain (and
                # the server reports the end of the response as a disconnect).
                watch.disarm()
                await send({"type": "http.response.body", "body": chunk, "more_body": False})
            else:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if not ended:
            watch.disarm()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
    except (asyncio.CancelledError, OSError, ClientDisconnected):
        if not watch.gone:
            raise
        watch.disarm()
        await on_disconnect()
        return False
    finally:
        watch.disarm()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except (RuntimeError, asyncio.CancelledError):
                pass
