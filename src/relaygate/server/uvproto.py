"""uvicorn's httptools protocol, with a response's head and first body part in one write.

uvicorn writes the status line and headers to the socket as soon as the app sends
``http.response.start``, and the body with the next message: two ``send`` syscalls (two TCP
segments) for every response, though relaygate always sends the body right after the head.
:class:`CoalescingCycle` holds the head's bytes until the next message of the same request and
writes both together. If the app yields to the event loop before its next message (a stream
whose first chunk is not ready yet), the head goes out on its own at the end of the current
loop iteration, so a client never waits for headers longer than before.

uvicorn's own state machine runs unchanged: the cycle's ``transport`` is swapped for a
recorder while uvicorn's ``send`` runs, so status, content-length and keep-alive handling,
error responses and pipelining stay uvicorn's. Select it with
``uvicorn.Config(http=HTTP_PROTOCOL)``; :data:`HTTP_PROTOCOL` is the plain ``"httptools"``
when the uvicorn installed does not have the internals this relies on.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
except ImportError:  # pragma: no cover - uvicorn without httptools
    HttpToolsProtocol = RequestResponseCycle = None  # type: ignore[assignment,misc]


class _Recorder:
    """Stands in for the transport while uvicorn's ``send`` runs: keeps what it writes."""

    __slots__ = ("closed", "parts", "real")

    def __init__(self, real: Any, parts: list[bytes]) -> None:
        self.real = real
        self.parts = parts
        self.closed = False

    def write(self, data: bytes) -> None:
        if data:
            self.parts.append(data)

    def close(self) -> None:
        self.closed = True

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, …
        return getattr(self.real, name)


if RequestResponseCycle is not None:

    class CoalescingCycle(RequestResponseCycle):  # type: ignore[misc]
        _held: list[bytes] | None = None  # the head, not yet written

        async def send(self, message: Any) -> None:
            held = self._held
            starting = message["type"] == "http.response.start" and not self.response_started
            if held is None and not starting:
                await super().send(message)
                return
            self._held = None
            real = self.transport
            recorder = _Recorder(real, held if held is not None else [])
            self.transport = recorder  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = real
                if starting and not recorder.closed and recorder.parts:
                    self._held = recorder.parts
                    asyncio.get_running_loop().call_soon(self._flush)
                else:
                    if recorder.parts:
                        real.write(b"".join(recorder.parts))
                    if recorder.closed:
                        real.close()

        def _flush(self) -> None:
            held, self._held = self._held, None
            if held and not self.transport.is_closing():
                self.transport.write(b"".join(held))

    class CoalescingProtocol(HttpToolsProtocol):  # type: ignore[misc]
        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and type(cycle) is RequestResponseCycle:
                # The cycle was built by uvicorn a line ago and has run nothing yet (its task
                # starts on the next loop iteration): give it the coalescing ``send``.
                cycle.__class__ = CoalescingCycle

    HTTP_PROTOCOL: Any = CoalescingProtocol
else:  # pragma: no cover
    HTTP_PROTOCOL = "httptools"

__all__ = ["HTTP_PROTOCOL"]
