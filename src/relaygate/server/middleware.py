"""Pure-ASGI middleware, outermost first: recovery → access log → request id → CORS → auth.

Each is a plain class ``(app, …)`` with ``async __call__(scope, receive, send)``; none buffers a
body, so streams pass straight through.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.middleware.cors import CORSMiddleware

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.config import Config
from relaygate.redact import redact, register_secret
from relaygate.server.http import ASGIApp, Message, Receive, Scope, Send, send_error

log = logging.getLogger(__name__)
access_log = logging.getLogger("relaygate.access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _state(scope: Scope) -> dict[str, Any]:
    state = scope.get("state")
    if not isinstance(state, dict):
        state = {}
        scope["state"] = state
    return state


class RecoveryMiddleware:
    """Any exception that escapes becomes a 500 in the client's dialect, never a dropped socket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error(
                "unhandled error on %s: %s",
                scope.get("path"),
                redact(repr(exc)),
                exc_info=sys.exc_info(),
            )
            if not started:
                await send_error(
                    send, scope["path"], GatewayError(ErrorKind.INTERNAL, "internal server error")
                )


class AccessLogMiddleware:
    """One JSON line per request on the ``relaygate.access`` logger; keys never appear."""

    def __init__(self, app: ASGIApp, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        status = 0
        headers: dict[bytes, bytes] = {}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update(
                    (k, v)
                    for k, v in message.get("headers", ())
                    if k in (b"x-relaygate-backend", b"x-relaygate-attempts")
                )
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            entry = {
                "ts": round(time.time(), 3),
                "request_id": _state(scope).get("request_id"),
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "ms": round((time.monotonic() - start) * 1000, 2),
                "client_key": _state(scope).get("client_key"),
                "backend": headers.get(b"x-relaygate-backend", b"").decode() or None,
                "attempts": int(headers.get(b"x-relaygate-attempts", b"0") or 0),
            }
            access_log.info(redact(orjson.dumps(entry).decode()))


class RequestIdMiddleware:
    """Accepts a sane ``X-Request-ID`` or makes one; echoes it on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_ID.match(candidate):
                    rid = candidate
                break
        rid = rid or uuid.uuid4().hex
        _state(scope)["request_id"] = rid
        raw = rid.encode()

        async def add_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(k == b"x-relaygate-request-id" for k, _ in headers):
                    headers.append((b"x-relaygate-request-id", raw))
                headers.append((b"x-request-id", raw))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add_header)


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
        self.public = tuple(public_paths)
        self.loop_guard = loop_guard
        self.verifier = verifier

    def _public(self, path: str) -> bool:
        return any(path == p or (p.endswith("*") and path.startswith(p[:-1])) for p in self.public)

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
    app = RequestIdMiddleware(app)
    app = AccessLogMiddleware(app, enabled=config.server.access_log)
    return RecoveryMiddleware(app)
