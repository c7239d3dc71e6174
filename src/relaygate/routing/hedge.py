"""``hedge``: one attempt; if it has not produced output after a delay, a second one on the next
target (up to ``hedge_max_extra`` extra attempts); whichever answers first wins and the others
are cancelled at once. An attempt that fails outright is replaced without waiting.

The delay is ``hedge_delay`` when configured, else the ``hedge_percentile``-th percentile of the
route's observed times to first byte (:class:`HedgeTimer`), else ``DEFAULT_DELAY`` until enough
samples exist.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from relaygate.canonical import GatewayError
from relaygate.config import RetryConfig
from relaygate.routing.attempt import Outcome
from relaygate.routing.router import Plan
from relaygate.routing.state import RoutingState
from relaygate.routing.strategies import (
    Execution,
    Opener,
    attempt_once,
    cancel_all,
    exhausted,
    state_of,
)

DEFAULT_DELAY = 2.0
MIN_SAMPLES = 5


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile of non-empty ``samples``, ``0 < p <= 100``."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class HedgeTimer:
    """When to send the next hedged attempt. Pure state: feed it observed times to first
    byte; ask it for the delay."""

    def __init__(
        self,
        delay: float | None = None,
        percentile: float = 95.0,
        *,
        default: float = DEFAULT_DELAY,
        min_samples: int = MIN_SAMPLES,
        window: int = 256,
    ) -> None:
        self.fixed = delay
        self.p = percentile
        self.default = default
        self.min_samples = min_samples
        self.samples: deque[float] = deque(maxlen=window)

    def observe(self, seconds: float) -> None:
        if seconds >= 0 and math.isfinite(seconds):
            self.samples.append(seconds)

    def delay(self) -> float:
        if self.fixed is not None:
            return self.fixed
        if len(self.samples) < self.min_samples:
            return self.default
        return percentile(list(self.samples), self.p)


def timer_for(plan: Plan, state: RoutingState) -> HedgeTimer:
    timers = state.hedge_timers
    timer: HedgeTimer | None = timers.get(plan.name)
    if timer is None:
        route = plan.route
        timer = HedgeTimer(
            route.hedge_delay if route else None, route.hedge_percentile if route else 95.0
        )
        timers[plan.name] = timer
    return timer


async def run_hedge(
    plan: Plan, opener: Opener, retry: RetryConfig, execution: Execution
) -> Outcome:
    state = state_of(plan)
    timer = timer_for(plan, state)
    max_extra = plan.route.hedge_max_extra if plan.route is not None else 1
    targets = plan.targets
    launched = 0
    pending: set[asyncio.Task[Outcome]] = set()
    started: dict[asyncio.Task[Outcome], float] = {}
    errors: list[GatewayError] = []
    winner: Outcome | None = None

    def launch() -> None:
        nonlocal launched
        target = targets[launched % len(targets)]
        launched += 1
        task = asyncio.create_task(attempt_once(target, opener, state, execution))
        started[task] = state.clock()
        pending.add(task)

    launch()
    try:
        while pending and winner is None:
            can_hedge = launched < 1 + max_extra
            done, pending = await asyncio.wait(
                pending,
                timeout=timer.delay() if can_hedge else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                launch()  # the timer fired: hedge
                continue
            for task in done:
                exc = task.exception()
                if exc is None:
                    if winner is None:
                        winner = task.result()
                        timer.observe(state.clock() - started[task])
                    else:
                        await task.result().aclose()
                elif isinstance(exc, GatewayError):
                    errors.append(exc)
                    if not exc.retryable and exc.code != "circuit_open":
                        raise exc  # the request itself is bad; another target will not help
                else:
                    raise exc
            if winner is None and not pending and launched < 1 + max_extra:
                launch()  # failed outright: replace it now
    finally:
        await cancel_all(pending)
    if winner is not None:
        return winner
    raise exhausted(plan, errors)
