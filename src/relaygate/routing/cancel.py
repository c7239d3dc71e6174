"""Client disconnects: stop the request's work at once.

One :class:`DisconnectWatch` per request waits on ``receive`` for ``http.disconnect`` (once the
body has been read, that is the only message ASGI servers deliver there). While it is *armed*
— strategies waiting on upstreams before the first byte, then the relay of a stream — a
disconnect cancels the request's own task, which cancels every in-flight attempt in turn (each
aborting its upstream connection). One task per request, instead of a task for the strategy,
one for the watcher and a third for the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from relaygate.canonical import ErrorKind, GatewayError

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


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

    __slots__ = ("_owner", "_task", "armed", "fired", "gone")

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self.armed = False
        self.fired = False
        owner = asyncio.current_task()
        assert owner is not None
        self._owner = owner
        self._task = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self.gone = True
                if self.armed:
                    self.fired = True
                    self._owner.cancel()
                return

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
        if not responded and not self._task.done():
            self._task.cancel()
