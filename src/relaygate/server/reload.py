"""Config reload: ``SIGHUP`` or ``POST /api/config/reload``.

The new file is loaded, validated fully (structure, backends, routes, and the sections of the
operations subsystems), built into a new :class:`~relaygate.gateway.Gateway`, its models
discovered, run-time providers merged in — and only then swapped in, in one assignment. Any
problem keeps the running config and is reported line by line. The old backends are closed once
in-flight requests had ``server.shutdown_grace_seconds`` to finish.

Auth, CORS and the listen address are read at start-up and need a restart to change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relaygate.config import ConfigError, load_config
from relaygate.gateway import Gateway, auto_detect, build_gateway
from relaygate.server.envelope import fail, ok

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)


class Reloader:
    def __init__(self, app: RelayApp) -> None:
        self.app = app
        self._lock = asyncio.Lock()
        self.reloads = 0
        self.last_problems: list[str] = []

    def config_path(self) -> str | None:
        path = self.app.state.get("config_path") or self.app.gateway.state.get("config_path")
        return str(path) if path else os.environ.get("RELAYGATE_CONFIG") or None

    async def reload(self) -> tuple[bool, list[str]]:
        """(swapped, problems)."""
        async with self._lock:
            path = self.config_path()
            env: dict[str, str] | None = self.app.state.get("env")
            old = self.app.gateway
            try:
                if path:
                    config = load_config(path, env)
                    new = build_gateway(
                        config, env=env, pm=old.pm, transport=self.app.state.get("transport")
                    )
                else:
                    base = auto_detect(old.registry, env if env is not None else os.environ)
                    new = build_gateway(base, env=env, pm=old.pm)
                # build_gateway validated every section (limits, prices, security…) already.
                problems: list[str] = []
                if new.config.server.auth.enabled != old.config.server.auth.enabled:
                    problems.append(
                        "server.auth.enabled: changing auth needs a restart — keep the running "
                        "value or restart relaygate"
                    )
                if problems:
                    await new.aclose()
                    raise ConfigError(problems)
            except ConfigError as exc:
                self.last_problems = exc.problems
                log.warning(
                    "config reload refused, the running config stays: %s", "; ".join(exc.problems)
                )
                return False, exc.problems
            new.state.update({k: v for k, v in old.state.items() if k not in new.state})
            if path:
                new.state["config_path"] = path
            await new.discover()
            manager = self.app.state.get("providers")
            if manager is not None:
                new = manager.merged(new)
                new.models = new.models + _runtime_models(
                    manager, {b.id for b in new.config.plugins.backends}
                )
                new.router.set_inventory(new.models)
            self.app.swap(new)
            self.reloads += 1
            self.last_problems = []
            if manager is not None:
                manager.retire_gateway(old)
            else:
                asyncio.get_running_loop().call_later(
                    old.config.server.shutdown_grace_seconds,
                    lambda: asyncio.ensure_future(old.aclose()),
                )
            log.info("config reloaded from %s", path or "the environment")
            return True, []


def _runtime_models(manager: Any, config_ids: set[str]) -> list[Any]:
    out: list[Any] = []
    for name, reg in manager.runtime.items():
        models = getattr(reg.backend, "_models", None)
        if reg.spec.enabled and models and name not in config_ids:
            out.extend(models)
    return out


def install(app: RelayApp) -> None:
    reloader = Reloader(app)
    app.state["reloader"] = reloader

    async def endpoint(request: Request) -> Response:
        if app.gateway.config.server.auth.enabled:
            meta = request.scope.get("state", {}).get("key_meta") or {}
            if not meta.get("master"):
                return Response(
                    fail("UNAUTHORIZED", "Reloading needs the master key."),
                    401,
                    media_type="application/json",
                )
        swapped, problems = await reloader.reload()
        if not swapped:
            message = "The new config was refused; the running config stays. " + " | ".join(
                problems
            )
            return Response(fail("INVALID_REQUEST", message), 400, media_type="application/json")
        gw = app.gateway
        data = {
            "reloaded": True,
            "backends": list(gw.backends),
            "models": len(gw.models),
            "routes": [r.name for r in gw.config.routes],
        }
        return Response(ok(data), 200, media_type="application/json")

    app.routes.append(Route("/api/config/reload", endpoint, methods=["POST"]))

    async def start(app: RelayApp) -> None:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[Any]] = set()

        def on_hup() -> None:
            task = loop.create_task(reloader.reload())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        try:
            loop.add_signal_handler(signal.SIGHUP, on_hup)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
            return

        async def stop() -> None:
            loop.remove_signal_handler(signal.SIGHUP)

        app.shutdown_callbacks.append(stop)

    app.lifecycle.append(start)


__all__ = ["Gateway", "Reloader", "install"]
