"""The ASGI application: a dict-dispatched hot path for generation routes, Starlette for the rest
(health, admin API, dashboard), wrapped in pure-ASGI middleware."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relaygate import __version__, dialects
from relaygate.canonical import ErrorKind, GatewayError
from relaygate.gateway import Gateway
from relaygate.server.frontends import chat_completions, not_found
from relaygate.server.http import (
    ASGIApp,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    send_bytes,
    send_error,
)
from relaygate.server.pipeline import Observer

log = logging.getLogger(__name__)

Handler = Callable[["RelayApp", Scope, Receive, Send], Awaitable[None]]

# (method, path) → handler. Dialect modules of the server add theirs through ``add_route``.
HOT_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/v1/chat/completions"): chat_completions,
    ("POST", "/chat/completions"): chat_completions,
}
# Path prefixes whose handler parses the rest of the path (Gemini's ``models/{model}:method``).
PREFIX_ROUTES: list[tuple[str, str, Handler]] = []
# Subsystems that contribute Starlette routes (admin API, metrics, dashboard…).
EXTRA_ROUTES: list[Callable[[RelayApp], list[Any]]] = []
# Start-up / shut-down work of subsystems (ledger writer, health probes…).
LIFECYCLE: list[Callable[[RelayApp], Any]] = []


SHUTTING_DOWN = GatewayError(
    ErrorKind.UNAVAILABLE,
    "relaygate is shutting down and takes no new requests; retry on another instance.",
    status=503,
    retry_after=1.0,
)


def add_route(method: str, path: str, handler: Handler) -> None:
    HOT_ROUTES[(method, path)] = handler


class RelayApp:
    """The innermost ASGI app. ``gateway`` may be swapped at run time (config reload)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.started = time.time()
        self.loop_guard = os.environ.get("RELAYGATE_LOOP_GUARD") or uuid.uuid4().hex
        self.observers: list[Observer] = []
        self.pm = gateway.pm
        self.hooks_active = _has_request_hooks(gateway)
        self.shutdown_callbacks: list[Callable[[], Awaitable[None]]] = []
        self.in_flight = 0
        self.accepting = True
        self.state: dict[str, Any] = {}
        self.routes: list[Any] = [
            Route("/health", self.health),
            Route("/status", self.status),
            Route("/version", self.version),
            Route("/v1/models", self.models),
            Route("/models", self.models),
        ]
        self.lifecycle: list[Callable[[RelayApp], Any]] = list(LIFECYCLE)
        for contribute in EXTRA_ROUTES:
            self.routes.extend(contribute(self))
        self._fallback: Starlette | None = None
        self.tune_gc = False  # set by the server entry points (see :func:`tune_gc`)

    @property
    def fallback(self) -> Starlette:
        """Starlette for the non-hot routes, built once every subsystem has added its own."""
        if self._fallback is None:
            self._fallback = Starlette(
                routes=self.routes,
                exception_handlers={404: self._http_error, 405: self._http_error},
            )
        return self._fallback

    async def _http_error(self, request: StarletteRequest, exc: Exception) -> Response:
        """Unknown paths and methods answer in the dialect of the path, like every error."""
        from relaygate.server.http import dialect_for_path

        status = getattr(exc, "status_code", 404)
        path = request.url.path
        if status == 405:
            err = GatewayError(
                ErrorKind.INVALID_REQUEST,
                f"Method {request.method} is not allowed on {path}.",
                status=405,
            )
        else:
            err = not_found(path)
        if path.startswith("/api/"):
            # DESIGN.md's closed set of admin codes has no NOT_FOUND; the 404 says it.
            code = "METHOD_NOT_ALLOWED" if status == 405 else "INVALID_REQUEST"
            return JSONResponse(
                {"success": False, "error": {"code": code, "message": err.message}}, status
            )
        body = dialects.get(dialect_for_path(path)).render_error(err)
        return Response(body, status_code=status, media_type="application/json")

    def swap(self, gateway: Gateway) -> None:
        # The old gateway's cycles may be frozen (see :func:`tune_gc`): let the collector see them.
        gc.unfreeze()
        self.gateway = gateway
        self.pm = gateway.pm
        self.hooks_active = _has_request_hooks(gateway)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            handler = HOT_ROUTES.get((scope["method"], scope["path"]))
            if handler is None:
                path = scope["path"]
                for method, prefix, candidate in PREFIX_ROUTES:
                    if scope["method"] == method and path.startswith(prefix):
                        handler = candidate
                        break
            if handler is not None:
                if not self.accepting:  # draining for shutdown: in-flight streams finish
                    await send_error(send, scope["path"], SHUTTING_DOWN, _request_id_header(scope))
                    return
                self.in_flight += 1
                try:
                    await handler(self, scope, receive, send)
                except GatewayError as err:
                    await send_error(send, scope["path"], err, _request_id_header(scope))
                except ClientDisconnected:
                    pass
                finally:
                    self.in_flight -= 1
                return
            await self.fallback(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.fallback(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        await self.gateway.discover()
        for hook in self.lifecycle:
            result = hook(self)
            if asyncio.iscoroutine(result):
                await result
        if self.tune_gc:
            tune_gc()

    def drain(self) -> None:
        """Stop taking generation requests (503 in the client's dialect); in-flight ones go on."""
        self.accepting = False

    async def shutdown(self) -> None:
        self.drain()
        grace = self.gateway.config.server.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for callback in reversed(self.shutdown_callbacks):
            try:
                await callback()
            except Exception:
                log.exception("shutdown callback failed")
        await self.gateway.aclose()

    # ------------------------------------------------------------------ plain routes

    async def health(self, request: StarletteRequest) -> Response:
        gw = self.gateway
        backends = {}
        for backend in gw.backends.values():
            info: dict[str, Any] = {"kind": backend.kind, "prefix": backend.prefix}
            health = self.state.get("health")
            if health is not None:
                info.update(health.backend_health(backend.id))
            if backend.id in gw.discovery_errors:
                info["discovery_error"] = gw.discovery_errors[backend.id]
            backends[backend.id] = info
        status = "ok"
        if any(b.get("breaker") == "open" for b in backends.values()):
            status = "degraded"
        if not self.accepting:  # load balancers take a draining instance out of rotation
            return JSONResponse({"status": "draining", "backends": backends}, 503)
        return JSONResponse({"status": status, "backends": backends})

    async def status(self, request: StarletteRequest) -> Response:
        gw = self.gateway
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "uptime_seconds": round(time.time() - self.started, 3),
                "backends": len(gw.backends),
                "models": len(gw.models),
                "routes": [r.name for r in gw.config.routes],
                "in_flight": self.in_flight,
                "discovery_errors": gw.discovery_errors,
            }
        )

    async def version(self, request: StarletteRequest) -> Response:
        return JSONResponse({"name": "relaygate", "version": __version__})

    async def models(self, request: StarletteRequest) -> Response:
        gw = self.gateway
        models = list(gw.models)
        for route in gw.config.routes:
            from relaygate.canonical import ModelInfo

            models.append(
                ModelInfo(
                    id=route.name, native_id=route.name, backend="route", owned_by="relaygate"
                )
            )
        # Anthropic and Gemini clients list models in their own shapes.
        name = dialects.OPENAI_CHAT
        if request.headers.get("anthropic-version") or request.headers.get("x-api-key"):
            name = dialects.ANTHROPIC
        try:
            body = dialects.get(name).render_models(models)
        except ImportError:
            body = dialects.get(dialects.OPENAI_CHAT).render_models(models)
        return Response(body, media_type="application/json")


GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Cycle-collector settings for a server process, applied once start-up is done.

    A request leaves no cyclic garbage behind (``tests/server/test_gc.py``), yet with the default
    gen-0 threshold of 700 the allocation swings of a few dozen requests in flight set off a
    collection every ~9 requests, each walking every young object: ~65 µs per request, 7-8 %
    of the non-stream path (bench/, py-spy). At 10,000 it runs about once per 5,000 requests.
    What start-up built (config, pydantic models, dialect tables, SQLAlchemy metadata) lives as
    long as the process and is frozen out of the full passes.
    """
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, GC_GEN0_THRESHOLD), gen1, gen2)
    gc.collect()
    gc.freeze()


def _request_id_header(scope: Scope) -> list[tuple[bytes, bytes]]:
    state = scope.get("state")
    rid = state.get("request_id") if isinstance(state, dict) else None
    return [(b"x-relaygate-request-id", rid.encode())] if rid else []


def _has_request_hooks(gateway: Gateway) -> bool:
    names = ("before_request", "on_route_selected", "after_response", "on_error")
    return any(getattr(gateway.pm.hook, n).get_hookimpls() for n in names)


async def send_not_found(scope: Scope, send: Send) -> None:
    await send_error(send, scope["path"], not_found(scope["path"]))


def json_bytes(obj: Any) -> bytes:
    return orjson.dumps(obj)


async def refuse(
    send: Send, path: str, message: str, kind: ErrorKind = ErrorKind.UNAVAILABLE
) -> None:
    await send_error(send, path, GatewayError(kind, message))


__all__ = [
    "EXTRA_ROUTES",
    "HOT_ROUTES",
    "LIFECYCLE",
    "PREFIX_ROUTES",
    "RelayApp",
    "add_route",
    "send_bytes",
]


# Optional subsystems: each module has ``install(app: RelayApp) -> None`` that adds observers,
# routes, lifecycle work or response headers. Missing modules are skipped.
SUBSYSTEMS = [
    "relaygate.server.dialect_routes",
    "relaygate.server.embeddings",
    "relaygate.server.responses_state",
    "relaygate.routing.health",
    "relaygate.store.install",
    "relaygate.limits",
    "relaygate.server.metrics",
    "relaygate.server.tracing",
    "relaygate.server.admin",
    "relaygate.server.dashboard",
    "relaygate.server.reload",
]


def install_subsystems(inner: RelayApp) -> None:
    import importlib

    for name in SUBSYSTEMS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or name.startswith(f"{exc.name}."):
                continue
            raise
        install = getattr(module, "install", None)
        if install is not None:
            install(inner)


def build_asgi(gateway: Gateway, *, server: bool = False) -> tuple[ASGIApp, RelayApp]:
    """The full middleware stack around a :class:`RelayApp`; returns (outer app, inner app).
    ``server``: this process is a ``relaygate serve`` server (tunes the cycle collector)."""
    from relaygate.server.middleware import wrap

    inner = RelayApp(gateway)
    inner.tune_gc = server
    install_subsystems(inner)
    return wrap(inner, gateway.config), inner
