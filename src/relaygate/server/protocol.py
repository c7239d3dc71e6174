"""relaygate's HTTP protocol for uvicorn: httptools, plus a disconnect callback per request.

ASGI reports a client that leaves only through ``receive()``, so noticing it while the request
waits on upstreams takes a task per request blocked in ``receive`` (what
:class:`~relaygate.routing.cancel.DisconnectWatch` falls back to under other servers). This
protocol offers the same news as a callback: the request's scope carries a list under
:data:`DISCONNECT_KEY`; when the connection drops before the response is complete, every
callable in it is called once. ``relaygate serve`` and the test servers run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DISCONNECT_KEY = "relaygate.on_disconnect"

log = logging.getLogger(__name__)


class RelayHttpProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # The cycle's task is scheduled, not started: the app sees the key from its first line.
        callbacks: list[Callable[[], None]] = []
        self.scope[DISCONNECT_KEY] = callbacks  # type: ignore[literal-required]

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and cycle.disconnected:
            scope: Any = cycle.scope
            for callback in scope.get(DISCONNECT_KEY, ()):
                try:
                    callback()
                except Exception:  # one broken callback must not keep the others from running
                    log.exception("disconnect callback failed")


def uvicorn_options() -> dict[str, Any]:
    """The uvicorn settings every relaygate server uses."""
    return {
        "http": RelayHttpProtocol,
        "loop": "uvloop",
        "access_log": False,  # relaygate writes its own (EdgeMiddleware)
        "server_header": False,  # no "server: uvicorn" on every response
        "proxy_headers": False,  # nothing reads the client address: no X-Forwarded-For layer
    }
