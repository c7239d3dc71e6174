"""What routing remembers between requests: a breaker and latency statistics per backend,
round-robin counters per route. One :class:`RoutingState` lives on the router, so a config
reload (a new gateway) starts afresh."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from relaygate.routing.breaker import BreakerConfig, CircuitBreaker
from relaygate.routing.clock import Clock, monotonic

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class BackendStats:
    """Observed behaviour of one backend: EWMA of time to first byte, attempts in flight, and a
    window of recent first-byte times (for hedge percentiles)."""

    alpha: float = 0.3
    ewma: float | None = None  # seconds
    in_flight: int = 0
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    successes: int = 0
    failures: int = 0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.ewma = (
            seconds if self.ewma is None else self.alpha * seconds + (1 - self.alpha) * self.ewma
        )
        self.samples.append(seconds)
        self.successes += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "latency_ms": None if self.ewma is None else round(self.ewma * 1000, 1),
            "in_flight": self.in_flight,
            "successes": self.successes,
            "failures": self.failures,
        }


class RoutingState:
    def __init__(
        self,
        breaker: BreakerConfig | None = None,
        *,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.breaker_config = breaker or BreakerConfig()
        self.clock = clock
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.breakers: dict[str, CircuitBreaker] = {}
        self.stats: dict[str, BackendStats] = {}
        self.counters: dict[str, int] = {}
        self.hedge_timers: dict[str, Any] = {}  # route name → hedge.HedgeTimer

    def breaker(self, backend_id: str) -> CircuitBreaker:
        found = self.breakers.get(backend_id)
        if found is None:
            found = self.breakers[backend_id] = CircuitBreaker(
                self.breaker_config, backend=backend_id, clock=self.clock
            )
        return found

    def stat(self, backend_id: str) -> BackendStats:
        found = self.stats.get(backend_id)
        if found is None:
            found = self.stats[backend_id] = BackendStats()
        return found

    def next_index(self, name: str, n: int) -> int:
        """Round-robin position for route ``name`` over ``n`` targets."""
        i = self.counters.get(name, 0)
        self.counters[name] = i + 1
        return i % max(1, n)

    def snapshot(self, backend_id: str) -> dict[str, Any]:
        out = self.breaker(backend_id).snapshot()
        out.update(self.stat(backend_id).snapshot())
        return out
