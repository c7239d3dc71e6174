"""Pure-ASGI middleware, outermost first: edge (recovery, access log, request id) → CORS → auth.

Each is a plain class ``(app, …)`` with ``async __call__(scope, receive, send)``; none buffers a
body, so streams pass straight through. Recovery, the access log and the request id share one
class and one ``send`` wrapper: three nested wrappers cost three closures and three extra
awaits on every message of every response.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.middleware.cors import CORSMiddleware

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.config import Config
from relaygate.logsink import DirectLines
from relaygate.redact import redact, register_secret
from relaygate.server.http import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    next_request_id,
    send_error,
)

log = logging.getLogger(__name__)
ACCESS_LOGGER = "relaygate.access"
access_log = logging.getLogger(ACCESS_LOGGER)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _state(scope: Scope) -> dict[str, Any]:
    state = scope.get("state")
    if not isinstance(state, dict):
        state = {}
        scope["state"] = state
    return state


class EdgeMiddleware:
    """The outermost layer, three duties with one ``send`` wrapper:

    * **request id** — accepts a sane ``X-Request-ID`` or makes one, puts it in
      ``scope["state"]["request_id"]`` and echoes it on every response;
    * **access log** — one JSON line per request on the ``relaygate.access`` logger (keys never
      appear: only the key *id* is known here; client-controlled text is redacted);
    * **recovery** — any exception that escapes becomes a 500 in the client's dialect, never a
      dropped socket.

    ``safe_paths`` are the gateway's own route paths: constants, logged without a redaction pass.
    """

    def __init__(
        self, app: ASGIApp, *, access_log: bool = True, safe_paths: Collection[str] = ()
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.safe_paths = frozenset(safe_paths)
        self._direct = DirectLines(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        rid: str | None = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_ID.match(candidate):
                    rid = candidate
                break
        client_rid = rid is not None
        if rid is None:
            rid = next_request_id()
        state = _state(scope)
        state["request_id"] = rid
        raw = rid.encode()
        # [status, backend, attempts] of the response, filled by ``edge_send``.
        seen: list[Any] = [0, None, b"0"]

        async def edge_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen[0] = message["status"]
                headers = message.get("headers") or []
                has_rid = False
                for k, v in headers:
                    if k == b"x-relaygate-backend":
                        seen[1] = v
                    elif k == b"x-relaygate-attempts":
                        seen[2] = v
                    elif k == b"x-relaygate-request-id":
                        has_rid = True
                headers = list(headers)
                if not has_rid:
                    headers.append((b"x-relaygate-request-id", raw))
                headers.append((b"x-request-id", raw))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, edge_send)
        except Exception as exc:
            log.error(
                "unhandled error on %s: %s",
                scope.get("path"),
                redact(repr(exc)),
                exc_info=sys.exc_info(),
            )
            if not seen[0]:
                seen[0] = 500
                await send_error(
                    send,
                    scope["path"],
                    GatewayError(ErrorKind.INTERNAL, "internal server error"),
                    [(b"x-relaygate-request-id", raw), (b"x-request-id", raw)],
                )
        finally:
            if self.access_log and access_log.isEnabledFor(logging.INFO):
                self._log(scope, state, start, rid, client_rid, seen)

    def _log(
        self,
        scope: Scope,
        state: dict[str, Any],
        start: float,
        rid: str,
        client_rid: bool,
        seen: list[Any],
    ) -> None:
        path = scope.get("path", "")
        if path not in self.safe_paths:
            path = redact(path)
        backend = seen[1]
        try:
            attempts = int(seen[2])
        except ValueError:
            attempts = 0
        entry = {
            "ts": round(time.time(), 3),
            "request_id": redact(rid) if client_rid else rid,
            "method": scope.get("method"),
            "path": path,
            "status": seen[0],
            "ms": round((time.monotonic() - start) * 1000, 2),
            # The key's id ("master" or a virtual key's id), never the key itself.
            "client_key": state.get("client_key"),
            "backend": backend.decode("latin-1") if backend else None,
            "attempts": attempts,
        }
        line = orjson.dumps(entry).decode()
        if self._direct.write(line):  # the server's batching handler, no LogRecord
            return
        # Logger.info without its caller lookup (a stack walk per request): the record's
        # origin is always this line.
        access_log.handle(
            access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, line, (), None)
        )


KeyVerifier = Callable[[str], Awaitable[dict[str, Any] | None]]


def client_key(scope: Scope) -> str | None:
    """The key a client presented: ``Authorization: Bearer``, ``x-api-key``,
    ``x-goog-api-key`` or ``?key=``."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                return str(text[7:].strip())
        elif key in (b"x-api-key", b"x-goog-api-key"):
            return str(value.decode("latin-1")).strip()
    query = scope.get("query_string", b"")
    if query and b"key=" in query:
        values = parse_qs(query.decode("latin-1")).get("key")
        if values:
            return str(values[0])
    return None


class AuthMiddleware:
    """Client auth: the master key (``server.auth.api_key_env``) or a virtual key found by
    ``verifier``. Errors are rendered in the dialect of the path called. Also refuses requests
    that carry this gateway's own loop guard (508)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        enabled: bool,
        master_key: str | None,
        public_paths: list[str],
        loop_guard: Callable[[], str],
        verifier: KeyVerifier | None = None,
    ) -> None:
        self.app = app
        self.enabled = enabled
        self.master_key = master_key.encode() if master_key else None
        self.public_exact = frozenset(p for p in public_paths if not p.endswith("*"))
        self.public_prefixes = tuple(p[:-1] for p in public_paths if p.endswith("*"))
        self.loop_guard = loop_guard
        self.verifier = verifier

    def _public(self, path: str) -> bool:
        return path in self.public_exact or (
            bool(self.public_prefixes) and path.startswith(self.public_prefixes)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard = None
        for key, value in scope["headers"]:
            if key == b"x-relaygate-loop-guard":
                guard = value.decode("latin-1")
                break
        if guard is not None and hmac.compare_digest(guard, self.loop_guard()):
            await send_error(
                send,
                scope["path"],
                GatewayError(
                    ErrorKind.LOOP,
                    "This request came from this gateway: a routing loop was refused.",
                ),
            )
            return
        if not self.enabled or self._public(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        presented = client_key(scope)
        if not presented:
            await send_error(
                send,
                scope["path"],
                GatewayError(
                    ErrorKind.AUTHENTICATION,
                    "Missing API key: send it as 'Authorization: Bearer <key>', 'x-api-key', 'x-goog-api-key' or ?key=.",
                ),
            )
            return
        state = _state(scope)
        if self.master_key is not None and hmac.compare_digest(presented.encode(), self.master_key):
            state["client_key"] = "master"
            state["key_meta"] = {"id": "master", "master": True}
            await self.app(scope, receive, send)
            return
        if self.verifier is not None:
            try:
                meta = await self.verifier(presented)
            except GatewayError as err:
                await send_error(send, scope["path"], err)
                return
            if meta is not None:
                state["client_key"] = meta.get("id")
                state["key_meta"] = meta
                await self.app(scope, receive, send)
                return
        await send_error(
            send, scope["path"], GatewayError(ErrorKind.AUTHENTICATION, "Invalid API key.")
        )


def wrap(inner: Any, config: Config) -> ASGIApp:
    """Build the middleware stack around ``inner`` (a :class:`RelayApp`)."""
    auth = config.server.auth
    # The same environment ``validate`` checked, so a key it accepted is the key enforced.
    env = getattr(getattr(inner, "gateway", None), "env", None) or os.environ
    master = env.get(auth.api_key_env) if auth.enabled else None
    register_secret(master)
    # A subsystem (the key store) may have installed a virtual-key verifier.
    verifier = inner.state.get("key_verifier")
    app: ASGIApp = AuthMiddleware(
        inner,
        enabled=auth.enabled,
        master_key=master,
        public_paths=[*auth.public_paths, *inner.state.get("public_paths", ())],
        loop_guard=lambda: str(inner.loop_guard),
        verifier=verifier,
    )
    cors = config.server.cors
    if cors.enabled:
        app = CORSMiddleware(
            app,
            allow_origins=cors.allowed_origins,
            allow_methods=["*"],
            allow_headers=cors.allowed_headers,
            expose_headers=[
                "x-relaygate-request-id",
                "x-relaygate-backend",
                "x-relaygate-attempts",
                "x-relaygate-cost",
            ],
        )
    from relaygate.server.app import HOT_ROUTES

    routes = {path for _, path in HOT_ROUTES}
    routes.update(getattr(route, "path", "") for route in getattr(inner, "routes", ()))
    return EdgeMiddleware(app, access_log=config.server.access_log, safe_paths=routes)
