"""Circuit breakers, one per backend.

``closed`` → (``failure_threshold`` consecutive failures) → ``open`` → (``reset_timeout``
seconds) → ``half_open``: up to ``half_open_max`` probe attempts go through; a success closes
the circuit, a failure opens it again for another ``reset_timeout``.

Only failures that say something about the backend count (5xx, timeouts, lost connections, a
200 with garbage): a client's bad request, a rate limit (the key pool's business) or an
exhausted key pool do not. The clock is injectable.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.routing.clock import Clock, monotonic

log = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

# Error kinds that count against a backend's health.
BREAKER_KINDS = frozenset(
    {ErrorKind.UPSTREAM, ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED, ErrorKind.TIMEOUT}
)


class BreakerConfig(BaseModel):
    """The ``breaker:`` section of relaygate.yaml."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    failure_threshold: int = Field(5, ge=1, description="consecutive failures that open it")
    reset_timeout: float = Field(30.0, gt=0, description="seconds open before a probe")
    half_open_max: int = Field(1, ge=1, description="concurrent probes while half-open")


def counts_against(err: GatewayError) -> bool:
    return err.kind in BREAKER_KINDS


class CircuitBreaker:
    def __init__(
        self, config: BreakerConfig | None = None, *, backend: str = "", clock: Clock = monotonic
    ) -> None:
        self.config = config or BreakerConfig()
        self.backend = backend
        self.clock = clock
        self.state = CLOSED
        self.failures = 0  # consecutive
        self.opened_at = 0.0
        self.probes = 0  # half-open attempts in flight
        self.trips = 0

    def current(self) -> str:
        """The state, after letting an expired ``open`` become ``half_open``."""
        if self.state == OPEN and self.clock() >= self.opened_at + self.config.reset_timeout:
            self.state = HALF_OPEN
            self.probes = 0
        return self.state

    def allow(self) -> bool:
        """May an attempt go to this backend now? A half-open ``True`` reserves a probe slot,
        which the caller gives back through :meth:`success`, :meth:`failure` or :meth:`release`."""
        if not self.config.enabled:
            return True
        state = self.current()
        if state == CLOSED:
            return True
        if state == HALF_OPEN and self.probes < self.config.half_open_max:
            self.probes += 1
            return True
        return False

    def retry_in(self) -> float:
        """Seconds until the next probe may go (0 when one may go now)."""
        if self.current() != OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.config.reset_timeout - self.clock())

    def success(self) -> None:
        if self.state != CLOSED:
            log.info("backend %s circuit closed", self.backend)
        self.state = CLOSED
        self.failures = 0
        self.probes = 0

    def failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or (
            self.state == CLOSED and self.failures >= self.config.failure_threshold
        ):
            self._open()

    def release(self) -> None:
        """An attempt ended without saying anything about the backend's health."""
        if self.state == HALF_OPEN and self.probes > 0:
            self.probes -= 1

    def record(self, err: GatewayError | None) -> None:
        if err is None:
            self.success()
        elif counts_against(err):
            self.failure()
        else:
            self.release()

    def _open(self) -> None:
        self.state = OPEN
        self.opened_at = self.clock()
        self.probes = 0
        self.trips += 1
        log.warning(
            "backend %s circuit open after %d consecutive failures; probing again in %.0fs",
            self.backend,
            self.failures,
            self.config.reset_timeout,
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "breaker": self.current(),
            "consecutive_failures": self.failures,
            "breaker_trips": self.trips,
            "breaker_retry_in": round(self.retry_in(), 3),
        }
