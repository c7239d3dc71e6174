"""``race``: every target at once; the first to produce output (its first byte, or a whole
answer when not streaming) wins. The losers are cancelled at once — an opener still waiting is
cancelled, which aborts its upstream connection; one that finished in the same instant is closed.
"""

from __future__ import annotations

import asyncio

from relaygate.canonical import GatewayError
from relaygate.config import RetryConfig
from relaygate.routing.attempt import Outcome
from relaygate.routing.router import Plan
from relaygate.routing.strategies import (
    Execution,
    Opener,
    attempt_once,
    cancel_all,
    exhausted,
    state_of,
)


async def first_success(
    tasks: set[asyncio.Task[Outcome]], errors: list[GatewayError]
) -> tuple[Outcome | None, set[asyncio.Task[Outcome]]]:
    """Wait until one task succeeds (→ its outcome and the tasks still pending) or all failed
    (→ None; their errors appended to ``errors``). Other exceptions propagate."""
    pending = set(tasks)
    winner: Outcome | None = None
    while pending and winner is None:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is None:
                if winner is None:
                    winner = task.result()
                else:  # a photo finish: the second one is a loser too
                    await task.result().aclose()
            elif isinstance(exc, GatewayError):
                errors.append(exc)
            else:
                raise exc
    return winner, pending


async def run_race(plan: Plan, opener: Opener, retry: RetryConfig, execution: Execution) -> Outcome:
    state = state_of(plan)
    tasks = {
        asyncio.create_task(attempt_once(target, opener, state, execution))
        for target in plan.targets
    }
    errors: list[GatewayError] = []
    pending = tasks
    try:
        winner, pending = await first_success(tasks, errors)
    finally:
        await cancel_all(pending)  # also when the client went away (we are cancelled)
    if winner is not None:
        return winner
    raise exhausted(plan, errors)
