"""When ``hedge`` launches its extra attempts, on virtual time: the event loop and the routing
state share one :class:`ManualClock`, and the loop moves it to its next timer instead of
sleeping — so "exactly at the delay, never before" is checked to the tick, with no real wait."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any

import pytest
from tests.routing.fakes import RETRY, Script, fail, ok, plan

from relaygate.canonical import GatewayError
from relaygate.routing.attempt import Outcome
from relaygate.routing.clock import ManualClock
from relaygate.routing.hedge import DEFAULT_DELAY, MIN_SAMPLES, run_hedge, timer_for
from relaygate.routing.router import Target
from relaygate.routing.state import RoutingState
from relaygate.routing.strategies import Execution


class _Skipping(selectors.DefaultSelector):
    """Polls without blocking; when nothing is ready, jumps the clock to the next timer."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if not ready and timeout:
            self.clock.advance(timeout)
        elif not ready and timeout is None:
            raise RuntimeError("deadlock: nothing scheduled and nothing ready")
        return ready


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: ManualClock) -> None:
        super().__init__(_Skipping(clock))
        self.clock = clock

    def time(self) -> float:
        return self.clock()


def run(clock: ManualClock, coro: Coroutine[Any, Any, Any]) -> Any:
    loop = VirtualLoop(clock)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


class Launches:
    """Openers that note the (virtual) time each attempt starts, then answer after ``after``
    seconds (``None``: never) or fail."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.at: list[tuple[str, float]] = []

    def answer(self, after: float | None, *, failing: bool = False) -> Any:
        async def behaviour(target: Target) -> Outcome:
            self.at.append((target.backend.id, self.clock()))
            await asyncio.sleep(3600 if after is None else after)
            if failing:
                return await fail()(target)
            return await ok(target.backend.id)(target)

        return behaviour


def _state(clock: ManualClock) -> RoutingState:
    return RoutingState(clock=clock)


@pytest.mark.parametrize("delay", [0.05, 0.25, 1.5])
def test_second_attempt_starts_exactly_at_the_configured_delay(delay: float) -> None:
    clock = ManualClock(100.0)
    go = Launches(clock)
    script = Script({"a": [go.answer(None)], "b": [go.answer(0.01)]})
    p = plan("hedge", ["a", "b"], hedge_delay=delay, state=_state(clock))
    out = run(clock, run_hedge(p, script, RETRY, Execution()))
    assert out.target.backend.id == "b"
    (a, t0), (b, t1) = go.at
    assert (a, b) == ("a", "b") and t0 == 100.0
    assert t1 >= t0 + delay  # never before
    assert t1 - t0 == pytest.approx(delay, abs=1e-9)


def test_no_hedge_when_the_first_answers_just_before_the_delay() -> None:
    clock = ManualClock()
    go = Launches(clock)
    script = Script({"a": [go.answer(0.499)], "b": [go.answer(0.0)]})
    state = _state(clock)
    p = plan("hedge", ["a", "b"], hedge_delay=0.5, state=state)
    out = run(clock, run_hedge(p, script, RETRY, Execution()))
    assert out.target.backend.id == "a" and [n for n, _ in go.at] == ["a"]
    # The winner's time to first byte, measured on the injected clock, feeds the timer.
    assert list(timer_for(p, state).samples) == [pytest.approx(0.499)]


def test_delay_is_the_percentile_of_observed_first_bytes() -> None:
    clock = ManualClock()
    go = Launches(clock)
    script = Script({"a": [go.answer(None)], "b": [go.answer(0.0)]})
    state = _state(clock)
    p = plan("hedge", ["a", "b"], hedge_percentile=90, state=state)
    timer = timer_for(p, state)
    for ms in (700, 100, 300, 900, 200, 500, 1000, 400, 800, 600):  # p90 (nearest rank): 0.9
        timer.observe(ms / 1000)
    run(clock, run_hedge(p, script, RETRY, Execution()))
    assert [n for n, _ in go.at] == ["a", "b"]
    assert go.at[1][1] == pytest.approx(0.9, abs=1e-9) and go.at[1][1] >= 0.9


def test_default_delay_until_enough_samples() -> None:
    clock = ManualClock()
    go = Launches(clock)
    script = Script({"a": [go.answer(None)], "b": [go.answer(0.0)]})
    state = _state(clock)
    p = plan("hedge", ["a", "b"], state=state)
    timer = timer_for(p, state)
    for _ in range(MIN_SAMPLES - 1):
        timer.observe(0.01)  # one short of trusting the percentile
    run(clock, run_hedge(p, script, RETRY, Execution()))
    assert go.at[1][1] == pytest.approx(DEFAULT_DELAY, abs=1e-9)


@pytest.mark.parametrize("max_extra", [0, 1, 2])
def test_extra_attempts_are_capped_by_hedge_max_extra(max_extra: int) -> None:
    clock = ManualClock()
    go = Launches(clock)
    # Nobody answers before t=10: the hedge fires every 0.5 s until the cap, then waits.
    script = Script(
        {
            "a": [go.answer(10.0)],
            "b": [go.answer(None)],
            "c": [go.answer(None)],
            "d": [go.answer(None)],
        }
    )
    p = plan(
        "hedge",
        ["a", "b", "c", "d"],
        hedge_delay=0.5,
        hedge_max_extra=max_extra,
        state=_state(clock),
    )
    out = run(clock, run_hedge(p, script, RETRY, Execution()))
    assert out.target.backend.id == "a"
    expected = [("a", 0.0), ("b", 0.5), ("c", 1.0)][: 1 + max_extra]
    assert [n for n, _ in go.at] == [n for n, _ in expected]
    assert [t for _, t in go.at] == pytest.approx([t for _, t in expected], abs=1e-9)
    assert clock() == pytest.approx(10.0)


def test_a_failed_attempt_is_replaced_at_once_not_at_the_delay() -> None:
    clock = ManualClock()
    go = Launches(clock)
    script = Script({"a": [go.answer(0.1, failing=True)], "b": [go.answer(0.2)]})
    p = plan("hedge", ["a", "b"], hedge_delay=5.0, state=_state(clock))
    out = run(clock, run_hedge(p, script, RETRY, Execution()))
    assert out.target.backend.id == "b"
    assert go.at == [("a", 0.0), ("b", pytest.approx(0.1, abs=1e-9))]


def test_every_attempt_failing_raises_after_the_cap() -> None:
    clock = ManualClock()
    go = Launches(clock)
    script = Script({n: [go.answer(0.1, failing=True)] for n in "abc"})
    p = plan("hedge", ["a", "b", "c"], hedge_delay=5.0, hedge_max_extra=1, state=_state(clock))
    with pytest.raises(GatewayError):
        run(clock, run_hedge(p, script, RETRY, Execution()))
    assert [n for n, _ in go.at] == ["a", "b"]
