"""Client disconnects: stop the request's work at once.

One :class:`DisconnectWatch` per request waits on ``receive`` for ``http.disconnect`` (once the
body has been read, that is the only message ASGI servers deliver there). While it is *armed*
— strategies waiting on upstreams before the first byte, then the relay of a stream — a
disconnect cancels the request's own task, which cancels every in-flight attempt in turn (each
aborting its upstream connection). One task per request, instead of a task for the strategy,
one for the watcher and a third for the stream.

Under relaygate's own server protocol (:mod:`relaygate.server.protocol`) the scope carries a
disconnect callback list, and the watch registers there instead: no watcher task at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from relaygate.canonical import ErrorKind, GatewayError

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

# Same value as relaygate.server.protocol.DISCONNECT_KEY (routing does not import the server).
DISCONNECT_KEY = "relaygate.on_disconnect"


def client_gone() -> GatewayError:
    return GatewayError(
        ErrorKind.INVALID_REQUEST, "client disconnected before the first byte", status=499
    )


class DisconnectWatch:
    """Watches ``receive`` for the request running in the current task.

    ``gone`` turns true when the client leaves; ``fired`` when that cancelled the task (it was
    armed). :meth:`disarm` withdraws that cancellation once it has been handled, so the task
    carries on (to record the request, close the upstream…). Example::

        watch = DisconnectWatch(receive)
        watch.arm()
        try:
            result = await work()
        except asyncio.CancelledError:
            if not watch.fired:
                raise
        finally:
            watch.disarm()
        if watch.gone:
            ...  # the client left
        ...  # respond
        watch.close(responded=True)
    """

    __slots__ = ("_callbacks", "_owner", "_task", "armed", "fired", "gone")

    def __init__(self, receive: Receive, scope: MutableMapping[str, Any] | None = None) -> None:
        self.gone = False
        self.armed = False
        self.fired = False
        owner = asyncio.current_task()
        assert owner is not None
        self._owner = owner
        callbacks = scope.get(DISCONNECT_KEY) if scope is not None else None
        self._callbacks: list[Callable[[], None]] | None = callbacks
        if callbacks is not None:
            callbacks.append(self._left)
            self._task: asyncio.Task[None] | None = None
        else:
            self._task = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self._left()
                return

    def _left(self) -> None:
        if self.gone:
            return
        self.gone = True
        if self.armed:
            self.fired = True
            self._owner.cancel()

    def arm(self) -> None:
        self.armed = True

    def disarm(self) -> None:
        """No more cancelling; a cancellation this watch made is withdrawn from the task's
        count (it has been delivered: the task only runs again after it is)."""
        self.armed = False
        if self.fired:
            self.fired = False
            self._owner.uncancel()

    def close(self, responded: bool) -> None:
        """The request is over. Once a response has been sent, ``receive`` reports
        ``http.disconnect`` (ASGI), so the watcher ends by itself: cancelling it would only
        make a CancelledError whose traceback ties the task, its frames and the server's
        request cycle into garbage that only the cycle collector frees."""
        self.armed = False
        callbacks = self._callbacks
        if callbacks is not None:
            self._callbacks = None
            callbacks.remove(self._left)
        task = self._task
        if task is not None and not responded and not task.done():
            task.cancel()
