"""Strategies: how a plan's targets are tried. Every strategy only ever deals with attempts up
to their first byte; once an :class:`Outcome` is returned, the stream belongs to the client."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.config import RetryConfig
from relaygate.routing.attempt import Outcome
from relaygate.routing.router import Plan, Target

log = logging.getLogger(__name__)

Opener = Callable[[Target], Awaitable[Outcome]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class AttemptLog:
    backend: str
    selector: str
    outcome: str  # "ok" or the error kind
    status: int
    detail: str = ""


class Execution:
    """The running record of one request's attempts (for headers, logs and the ledger)."""

    def __init__(self) -> None:
        self.attempts: list[AttemptLog] = []

    def record(self, target: Target, error: GatewayError | None) -> None:
        if error is None:
            self.attempts.append(AttemptLog(target.backend.id, target.selector, "ok", 200))
        else:
            self.attempts.append(
                AttemptLog(
                    target.backend.id,
                    target.selector,
                    error.kind.value,
                    error.upstream_status or error.status,
                    error.message[:200],
                )
            )
        # A success is already in the access log line (backend, attempts); logging it here
        # too cost ~6% of the non-stream hot path. Failures stay at INFO.
        if error is not None:
            log.info(
                "attempt backend=%s model=%s outcome=%s",
                target.backend.id,
                target.selector,
                error.kind.value,
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("attempt backend=%s model=%s outcome=ok", target.backend.id, target.selector)


def backoff_delay(
    retry: RetryConfig, attempt: int, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter; ``Retry-After`` wins, up to ``retry_after_cap``."""
    if retry_after is not None:
        return min(retry_after, retry.retry_after_cap)
    ceiling = min(retry.backoff_max, retry.backoff_base * (2**attempt))
    return (rng or random).uniform(0, ceiling)


async def try_target(
    target: Target,
    opener: Opener,
    retry: RetryConfig,
    execution: Execution,
    *,
    sleep: Sleep = asyncio.sleep,
) -> Outcome:
    """One target with its retry policy. Raises the last error when every try failed."""
    last: GatewayError | None = None
    for attempt in range(retry.attempts):
        try:
            outcome = await opener(target)
        except GatewayError as err:
            execution.record(target, err)
            last = err
            if not err.retryable or attempt + 1 >= retry.attempts:
                break
            if (
                err.kind in (ErrorKind.AUTHENTICATION, ErrorKind.PERMISSION)
                and len(getattr(target.backend, "keys", ())) <= 1
            ):
                break  # the same key will be refused again
            if err.retry_after is not None and err.retry_after > retry.retry_after_cap:
                break  # not worth waiting for here; let the next target try
            await sleep(backoff_delay(retry, attempt, err.retry_after))
            continue
        execution.record(target, None)
        return outcome
    assert last is not None
    raise last


async def run_fallback(
    plan: Plan, opener: Opener, retry: RetryConfig, execution: Execution
) -> Outcome:
    """Ordered targets; each with its own retries; a non-retryable client error stops at once."""
    errors: list[GatewayError] = []
    for target in plan.targets:
        try:
            return await try_target(target, opener, retry, execution)
        except GatewayError as err:
            errors.append(err)
            if not err.retryable:
                raise
    raise _exhausted(plan, errors)


def _exhausted(plan: Plan, errors: list[GatewayError]) -> GatewayError:
    if len(errors) == 1:
        return errors[0]
    last = errors[-1]
    detail = "; ".join(f"{e.backend or '?'}: {e.message}" for e in errors)
    return GatewayError(
        last.kind,
        f"every target of {plan.name} failed — {detail}",
        status=last.status,
        retry_after=last.retry_after,
        backend=last.backend,
    )


STRATEGIES: dict[str, Callable[[Plan, Opener, RetryConfig, Execution], Awaitable[Outcome]]] = {
    "single": run_fallback,
    "fallback": run_fallback,
}


async def execute(plan: Plan, opener: Opener, retry: RetryConfig, execution: Execution) -> Outcome:
    runner = STRATEGIES.get(plan.strategy)
    if runner is None:
        raise GatewayError(ErrorKind.INTERNAL, f"strategy {plan.strategy!r} is not available")
    return await runner(
        plan, opener, plan.route.retry if plan.route and plan.route.retry else retry, execution
    )
