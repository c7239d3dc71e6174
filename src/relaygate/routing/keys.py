"""Key pools: rotation across a backend's keys with cooldowns.

* 429 → that key cools down for ``Retry-After`` (or ``rate_limit_cooldown``) seconds;
* 401/403 → that key is set aside for ``auth_cooldown`` seconds (it may have been rotated);
* otherwise keys rotate round-robin.

Keys are referred to by index in logs, never by value. The clock is injectable so the state
machine is tested without sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(slots=True)
class KeyState:
    key: str
    cooldown_until: float = 0.0
    reason: str = ""
    uses: int = 0
    failures: int = 0


class KeyPool:
    def __init__(
        self,
        keys: list[str],
        *,
        backend: str = "",
        rate_limit_cooldown: float = 30.0,
        auth_cooldown: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.states = [KeyState(k) for k in keys]
        self.rate_limit_cooldown = rate_limit_cooldown
        self.auth_cooldown = auth_cooldown
        self.clock = clock
        self._next = 0

    def __len__(self) -> int:
        return len(self.states)

    def acquire(self) -> tuple[int, str] | None:
        """The next usable key as ``(index, key)``, or None when every key is cooling down.

        A pool with no keys at all returns ``(-1, "")``: the backend needs none."""
        if not self.states:
            return (-1, "")
        now = self.clock()
        n = len(self.states)
        for step in range(n):
            i = (self._next + step) % n
            state = self.states[i]
            if state.cooldown_until <= now:
                self._next = (i + 1) % n
                state.uses += 1
                return (i, state.key)
        return None

    def soonest_available(self) -> float:
        """Seconds until some key is usable again (0 if one is)."""
        if not self.states:
            return 0.0
        now = self.clock()
        return max(0.0, min(s.cooldown_until for s in self.states) - now)

    def report(self, index: int, status: int | None, retry_after: float | None = None) -> None:
        """Tell the pool how a request with key ``index`` went (its HTTP status)."""
        if index < 0 or index >= len(self.states):
            return
        state = self.states[index]
        now = self.clock()
        if status == 429:
            wait = retry_after if retry_after is not None else self.rate_limit_cooldown
            state.cooldown_until = now + max(0.0, wait)
            state.reason = "rate_limited"
            state.failures += 1
            log.warning(
                "backend %s key #%d rate limited; cooling down %.1fs", self.backend, index + 1, wait
            )
        elif status in (401, 403):
            state.cooldown_until = now + self.auth_cooldown
            state.reason = "auth_failed"
            state.failures += 1
            log.warning(
                "backend %s key #%d refused (HTTP %s); set aside for %.0fs",
                self.backend,
                index + 1,
                status,
                self.auth_cooldown,
            )
        elif status is not None and status < 400:
            state.reason = ""
            state.failures = 0

    def snapshot(self) -> list[dict[str, object]]:
        """Key states for /health and the admin API — by index, never by value."""
        now = self.clock()
        return [
            {
                "index": i + 1,
                "available": s.cooldown_until <= now,
                "cooldown_seconds": round(max(0.0, s.cooldown_until - now), 3),
                "reason": s.reason or None,
                "uses": s.uses,
            }
            for i, s in enumerate(self.states)
        ]
