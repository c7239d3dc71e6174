"""Backend health: circuit-breaker state and observed latency from real traffic, plus optional
active probes that time a cheap upstream call (the model list) on an interval.

``install(app)`` (a server subsystem) stores a :class:`HealthMonitor` at ``app.state["health"]``;
``/health`` asks it for :meth:`HealthMonitor.backend_health` and reports ``degraded`` when a
breaker is open. Probes are configured by the ``health:`` section::

    health:
      probes: true        # default false: passive statistics only
      interval: 30        # seconds between probe rounds
      timeout: 5          # seconds per probe

Probes only observe: a failing model list says little about generation, so it never trips a
breaker. It does show in ``/health`` (``probe.ok``, ``probe.latency_ms``, ``probe.error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from relaygate.canonical import GatewayError
from relaygate.routing.attempt import Outcome
from relaygate.routing.clock import Clock, monotonic

if TYPE_CHECKING:
    from relaygate.gateway import Gateway
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)


class HealthConfig(BaseModel):
    """The ``health:`` section of relaygate.yaml."""

    model_config = ConfigDict(extra="forbid")

    probes: bool = False
    interval: float = Field(30.0, gt=0)
    timeout: float = Field(5.0, gt=0)


class HealthMonitor:
    def __init__(self, gateway_of: Any, *, clock: Clock = monotonic) -> None:
        self._gateway_of = gateway_of  # a callable: the app may swap its gateway on reload
        self.clock = clock
        self.probes: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self._gateway_of()
        return gateway

    def backend_health(self, backend_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.gateway.router.state.snapshot(backend_id)
        probe = self.probes.get(backend_id)
        if probe is not None:
            out["probe"] = probe
        return out

    async def probe(self, backend_id: str, timeout: float) -> dict[str, Any]:
        backend = self.gateway.backends[backend_id]
        discover = getattr(backend, "discover", None)
        started = self.clock()
        result: dict[str, Any]
        try:
            async with asyncio.timeout(timeout):
                if discover is not None:
                    await discover()
                else:
                    await backend.list_models()
            result = {"ok": True, "latency_ms": round((self.clock() - started) * 1000, 1)}
        except TimeoutError:
            result = {"ok": False, "error": f"no answer within {timeout:g}s"}
        except GatewayError as err:
            result = {"ok": False, "error": f"{err.kind.value}: {err.message[:200]}"}
        except (OSError, ValueError) as exc:
            result = {"ok": False, "error": type(exc).__name__}
        result["checked_at"] = round(time.time(), 3)
        self.probes[backend_id] = result
        return result

    async def probe_all(self, timeout: float) -> None:
        ids = list(self.gateway.backends)
        await asyncio.gather(*(self.probe(i, timeout) for i in ids))

    async def _loop(self) -> None:
        while True:
            config = settings(self.gateway.config.health)
            if config.probes:
                try:
                    await self.probe_all(config.timeout)
                except Exception:  # a probe bug must not kill the loop
                    log.exception("health probe round failed")
            await asyncio.sleep(config.interval)

    def start(self) -> None:
        if self._task is None and settings(self.gateway.config.health).probes:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def settings(raw: dict[str, Any]) -> HealthConfig:
    return HealthConfig.model_validate(raw or {})


def _outcome_headers(outcome: Outcome) -> list[tuple[bytes, bytes]]:
    return outcome.headers


def install(app: RelayApp) -> None:
    from relaygate.server.pipeline import OUTCOME_HEADERS

    monitor = HealthMonitor(lambda: app.gateway)
    app.state["health"] = monitor
    if _outcome_headers not in OUTCOME_HEADERS:
        OUTCOME_HEADERS.append(_outcome_headers)
    app.lifecycle.append(lambda _app: monitor.start())
    app.shutdown_callbacks.append(monitor.stop)
