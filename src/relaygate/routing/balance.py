"""``balance``: pick the order in which a route's targets are tried, then fall back along it.

* ``weighted`` — a weighted random order (each next target drawn in proportion to its weight);
* ``round_robin`` — rotate the starting target on every request;
* ``least_latency`` — lowest EWMA of observed time to first byte first; a target never seen
  yet goes first, so every target gets measured;
* ``least_busy`` — fewest attempts in flight first (ties keep configured order).

Targets whose circuit is open go last, so a healthy one is tried before a probe.
"""

from __future__ import annotations

import random

from relaygate.config import RetryConfig
from relaygate.routing.attempt import Outcome
from relaygate.routing.breaker import OPEN
from relaygate.routing.router import Plan, Target
from relaygate.routing.state import RoutingState
from relaygate.routing.strategies import Execution, Opener, run_ordered, state_of


def weighted_order(targets: list[Target], rng: random.Random) -> list[Target]:
    pool = list(targets)
    out: list[Target] = []
    while pool:
        total = sum(max(t.weight, 0.0) for t in pool)
        if total <= 0:
            out.extend(pool)
            break
        pick = rng.uniform(0, total)
        acc = 0.0
        chosen = len(pool) - 1
        for i, t in enumerate(pool):
            acc += max(t.weight, 0.0)
            if pick < acc:
                chosen = i
                break
        out.append(pool.pop(chosen))
    return out


def order(plan: Plan, state: RoutingState, mode: str) -> list[Target]:
    targets = list(plan.targets)
    if mode == "round_robin":
        start = state.next_index(plan.name, len(targets))
        ordered = targets[start:] + targets[:start]
    elif mode == "least_latency":

        def latency(t: Target) -> float:
            ewma = state.stat(t.backend.id).ewma
            return -1.0 if ewma is None else ewma

        ordered = sorted(targets, key=latency)
    elif mode == "least_busy":
        ordered = sorted(targets, key=lambda t: state.stat(t.backend.id).in_flight)
    else:
        ordered = weighted_order(targets, state.rng)
    # Python's sort is stable: healthy targets keep their order ahead of open circuits.
    return sorted(ordered, key=lambda t: state.breaker(t.backend.id).current() == OPEN)


async def run_balance(
    plan: Plan, opener: Opener, retry: RetryConfig, execution: Execution
) -> Outcome:
    mode = plan.route.balance if plan.route is not None else "weighted"
    targets = order(plan, state_of(plan), mode)
    return await run_ordered(plan, targets, opener, retry, execution)
