"""Strategies: how a plan's targets are tried. Every strategy only ever deals with attempts up
to their first byte; once an :class:`Outcome` is returned, the stream belongs to the client.

* ``single`` / ``fallback`` — ordered targets, each with its retry policy (this module);
* ``balance`` — the same, after ordering the targets (:mod:`relaygate.routing.balance`);
* ``race``, ``hedge``, ``consensus`` — concurrent attempts (their own modules).

Every attempt goes through :func:`attempt_once`, which consults the backend's circuit breaker,
feeds the latency statistics and logs the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.config import RetryConfig
from relaygate.routing.attempt import Outcome
from relaygate.routing.breaker import counts_against
from relaygate.routing.router import Plan, Target
from relaygate.routing.state import BackendStats, RoutingState

log = logging.getLogger(__name__)

Opener = Callable[[Target], Awaitable[Outcome]]
Sleep = Callable[[float], Awaitable[None]]
Runner = Callable[[Plan, Opener, RetryConfig, "Execution"], Awaitable[Outcome]]

_DEFAULT_STATE = RoutingState()


@dataclass(slots=True)
class AttemptLog:
    backend: str
    selector: str
    outcome: str  # "ok", "cancelled" or the error kind
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
                "attempt backend=%s model=%s outcome=%s status=%s",
                target.backend.id,
                target.selector,
                error.kind.value,
                error.upstream_status or error.status,
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("attempt backend=%s model=%s outcome=ok", target.backend.id, target.selector)

    def record_cancelled(self, target: Target, why: str) -> None:
        self.attempts.append(AttemptLog(target.backend.id, target.selector, "cancelled", 499, why))
        log.info(
            "attempt backend=%s model=%s outcome=cancelled (%s)",
            target.backend.id,
            target.selector,
            why,
        )


def state_of(plan: Plan) -> RoutingState:
    return plan.state if plan.state is not None else _DEFAULT_STATE


def backoff_delay(
    retry: RetryConfig, attempt: int, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter; ``Retry-After`` wins, up to ``retry_after_cap``."""
    if retry_after is not None:
        return min(retry_after, retry.retry_after_cap)
    ceiling = min(retry.backoff_max, retry.backoff_base * (2**attempt))
    return (rng or random).uniform(0, ceiling)


def circuit_open(target: Target, retry_in: float) -> GatewayError:
    return GatewayError(
        ErrorKind.UNAVAILABLE,
        f"backend {target.backend.id} is failing (circuit open); next probe in {retry_in:.0f}s",
        retry_after=retry_in,
        backend=target.backend.id,
        code="circuit_open",
    )


async def attempt_once(
    target: Target, opener: Opener, state: RoutingState, execution: Execution
) -> Outcome:
    """One attempt on one target: breaker gate, statistics, log. Raises :class:`GatewayError`."""
    breaker = state.breaker(target.backend.id)
    if not breaker.allow():
        err = circuit_open(target, breaker.retry_in())
        log.info("attempt backend=%s skipped: circuit open", target.backend.id)
        raise err
    stats = state.stat(target.backend.id)
    stats.in_flight += 1
    started = state.clock()
    try:
        outcome = await opener(target)
    except GatewayError as err:
        stats.in_flight -= 1
        stats.failures += 1
        breaker.record(err)
        execution.record(target, err)
        raise
    except BaseException:  # cancelled (a race lost, the client left) — no verdict on the backend
        stats.in_flight -= 1
        breaker.release()
        execution.record_cancelled(target, "cancelled before its first byte")
        raise
    stats.observe(state.clock() - started)
    breaker.success()
    execution.record(target, None)
    _track(outcome, stats, state, target)
    return outcome


def _track(outcome: Outcome, stats: BackendStats, state: RoutingState, target: Target) -> None:
    """Keep ``in_flight`` until a stream ends; a stream that breaks mid-way counts against the
    backend's breaker (the client already got its terminal error event)."""
    done = False

    def finish() -> None:
        nonlocal done
        if not done:
            done = True
            stats.in_flight -= 1
            if outcome.error is not None and counts_against(outcome.error):
                state.breaker(target.backend.id).failure()

    if outcome.chunks is None:
        finish()
        return
    # The relay calls ``ended`` when it stops (attempt.py); chaining keeps an earlier hook.
    previous = outcome.on_end

    def on_end() -> None:
        finish()
        if previous is not None:
            previous()

    outcome.on_end = on_end if previous is not None else finish
    close = outcome.close

    def closing() -> Any:
        finish()
        return close() if close is not None else None

    outcome.close = closing


async def try_target(
    target: Target,
    opener: Opener,
    retry: RetryConfig,
    execution: Execution,
    *,
    sleep: Sleep | None = None,
    state: RoutingState | None = None,
) -> Outcome:
    """One target with its retry policy. Raises the last error when every try failed."""
    state = state or _DEFAULT_STATE
    pause = sleep or state.sleep
    last: GatewayError | None = None
    for attempt in range(retry.attempts):
        try:
            return await attempt_once(target, opener, state, execution)
        except GatewayError as err:
            last = err
            if err.code == "circuit_open":
                break
            if not err.retryable or attempt + 1 >= retry.attempts:
                break
            if (
                err.kind in (ErrorKind.AUTHENTICATION, ErrorKind.PERMISSION)
                and len(getattr(target.backend, "keys", ())) <= 1
            ):
                break  # the same key will be refused again
            if err.retry_after is not None and err.retry_after > retry.retry_after_cap:
                break  # not worth waiting for here; let the next target try
            await pause(backoff_delay(retry, attempt, err.retry_after, state.rng))
    assert last is not None
    raise last


async def run_ordered(
    plan: Plan,
    targets: Iterable[Target],
    opener: Opener,
    retry: RetryConfig,
    execution: Execution,
) -> Outcome:
    """Targets in the given order, each with its own retries; a client error stops at once."""
    state = state_of(plan)
    errors: list[GatewayError] = []
    for target in targets:
        try:
            return await try_target(target, opener, retry, execution, state=state)
        except GatewayError as err:
            errors.append(err)
            if not err.retryable:
                raise
    raise exhausted(plan, errors)


async def run_fallback(
    plan: Plan, opener: Opener, retry: RetryConfig, execution: Execution
) -> Outcome:
    """Ordered targets; each with its own retries; a non-retryable client error stops at once."""
    return await run_ordered(plan, plan.targets, opener, retry, execution)


def exhausted(plan: Plan, errors: list[GatewayError]) -> GatewayError:
    """The error a client sees when no target answered. A client-side error (bad request)
    wins over upstream ones, since retrying elsewhere would not have helped."""
    if not errors:
        return GatewayError(ErrorKind.UNAVAILABLE, f"no target of {plan.name} could be tried")
    for err in errors:
        if not err.retryable and err.code != "circuit_open":
            return err
    if len(errors) == 1:
        return errors[0]
    last = errors[-1]
    detail = "; ".join(f"{e.backend or '?'}: {e.message}" for e in errors)
    return GatewayError(
        last.kind,
        f"every target of {plan.name} failed — {detail}",
        status=last.status,
        retry_after=min((e.retry_after for e in errors if e.retry_after is not None), default=None),
        backend=last.backend,
        code=last.code,
    )


async def cancel_all(tasks: Iterable[asyncio.Task[Outcome]]) -> None:
    """Cancel concurrent attempts and wait until each is gone; an attempt that won a photo
    finish after all has its upstream connection closed."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Outcome):
            await result.aclose()


def _strategies() -> dict[str, Runner]:
    from relaygate.routing.balance import run_balance
    from relaygate.routing.consensus import run_consensus
    from relaygate.routing.hedge import run_hedge
    from relaygate.routing.race import run_race

    return {
        "single": run_fallback,
        "fallback": run_fallback,
        "balance": run_balance,
        "race": run_race,
        "hedge": run_hedge,
        "consensus": run_consensus,
    }


STRATEGIES: dict[str, Runner] = {}


async def execute(plan: Plan, opener: Opener, retry: RetryConfig, execution: Execution) -> Outcome:
    if not STRATEGIES:
        STRATEGIES.update(_strategies())
    runner = STRATEGIES.get(plan.strategy)
    if runner is None:
        raise GatewayError(ErrorKind.INTERNAL, f"strategy {plan.strategy!r} is not available")
    return await runner(
        plan, opener, plan.route.retry if plan.route and plan.route.retry else retry, execution
    )
