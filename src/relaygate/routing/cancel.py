"""Client disconnect before the first byte: stop every in-flight attempt.

Strategies wait on upstreams before anything is sent to the client; if the client leaves
meanwhile, :func:`unless_disconnected` cancels the strategy, whose concurrent attempts are
cancelled in turn (each aborting its upstream connection). Once the body has been read, the
only message ASGI servers deliver on ``receive`` is ``http.disconnect``, so watching it is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, TypeVar

from relaygate.canonical import ErrorKind, GatewayError

T = TypeVar("T")
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def client_gone() -> GatewayError:
    return GatewayError(
        ErrorKind.INVALID_REQUEST, "client disconnected before the first byte", status=499
    )


async def unless_disconnected(receive: Receive, work: Coroutine[Any, Any, T]) -> T:
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        if not watcher.done():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, GatewayError):
        await task
    raise client_gone()
