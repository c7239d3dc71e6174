"""Property tests of the routing state machines, driven by an injected clock: no sleeps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.routing.breaker import CLOSED, HALF_OPEN, OPEN, BreakerConfig, CircuitBreaker
from relaygate.routing.clock import ManualClock
from relaygate.routing.hedge import HedgeTimer, percentile
from relaygate.routing.keys import KeyPool

# ----------------------------------------------------------------------------- key pool

key_events = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "429", "401", "200", "tick"]),
        st.floats(min_value=0, max_value=50, allow_nan=False),
    ),
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 5), events=key_events)
def test_key_pool_never_hands_out_a_cooling_key(n: int, events: list[tuple[str, float]]) -> None:
    clock = ManualClock()
    pool = KeyPool(
        [f"k{i}" for i in range(n)], rate_limit_cooldown=5, auth_cooldown=30, clock=clock
    )
    last: int | None = None
    for event, value in events:
        if event == "tick":
            clock.advance(value)
        elif event == "acquire":
            got = pool.acquire()
            usable = [s.cooldown_until <= clock() for s in pool.states]
            if got is None:
                assert not any(usable)
                assert pool.soonest_available() > 0
            else:
                assert pool.states[got[0]].cooldown_until <= clock()
                last = got[0]
        elif last is not None:
            status = int(event)
            pool.report(last, status, retry_after=value if status == 429 else None)
            state = pool.states[last]
            if status == 429:
                assert state.cooldown_until == clock() + value  # Retry-After honoured exactly
            elif status == 401:
                assert state.cooldown_until == clock() + 30
    # Back in service after the longest cooldown.
    clock.advance(60)
    assert pool.acquire() is not None


@given(n=st.integers(1, 6), rounds=st.integers(1, 4))
def test_key_pool_rotates_evenly(n: int, rounds: int) -> None:
    pool = KeyPool([f"k{i}" for i in range(n)], clock=ManualClock())
    seen = [pool.acquire() for _ in range(n * rounds)]
    assert all(s is not None for s in seen)
    for i in range(n):
        assert pool.states[i].uses == rounds


def test_key_pool_snapshot_never_shows_values() -> None:
    pool = KeyPool(["sk-secret-1", "sk-secret-2"], clock=ManualClock())
    pool.report(0, 401)
    assert "sk-secret" not in repr(pool.snapshot())


# ----------------------------------------------------------------------------- breaker

breaker_events = st.lists(
    st.tuples(
        st.sampled_from(["ok", "fail", "neutral", "tick"]),
        st.floats(min_value=0, max_value=40, allow_nan=False),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(threshold=st.integers(1, 5), probes=st.integers(1, 3), events=breaker_events)
def test_breaker_state_machine(
    threshold: int, probes: int, events: list[tuple[str, float]]
) -> None:
    clock = ManualClock()
    cfg = BreakerConfig(failure_threshold=threshold, reset_timeout=10, half_open_max=probes)
    breaker = CircuitBreaker(cfg, clock=clock)
    for event, value in events:
        if event == "tick":
            clock.advance(value)
            continue
        before = breaker.current()
        allowed = breaker.allow()
        if before == OPEN:
            assert not allowed  # an open circuit lets nothing through until reset_timeout
            continue
        if before == HALF_OPEN and not allowed:
            assert breaker.probes == probes
            continue
        assert allowed
        consecutive = breaker.failures
        if event == "ok":
            breaker.success()
            assert breaker.current() == CLOSED and breaker.failures == 0
        elif event == "fail":
            breaker.failure()
            if before == HALF_OPEN or consecutive + 1 >= threshold:
                assert breaker.state == OPEN and breaker.opened_at == clock()
            else:
                assert breaker.state == CLOSED
        else:
            breaker.release()
            assert breaker.state == before
        assert 0 <= breaker.probes <= probes


def test_breaker_half_open_after_timeout_and_single_probe() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=2, reset_timeout=10), clock=clock)
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow() and breaker.retry_in() == 10
    clock.advance(9.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow() and breaker.current() == HALF_OPEN
    assert not breaker.allow()  # one probe at a time
    breaker.failure()
    assert breaker.current() == OPEN and breaker.retry_in() == 10


# ----------------------------------------------------------------------------- hedge timer

samples = st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=0, max_size=60)


@given(
    xs=samples, p=st.floats(min_value=0.1, max_value=100), q=st.floats(min_value=0.1, max_value=100)
)
def test_hedge_timer_percentile(xs: list[float], p: float, q: float) -> None:
    timer = HedgeTimer(None, p, default=1.5, min_samples=5)
    for x in xs:
        timer.observe(x)
    if len(xs) < 5:
        assert timer.delay() == 1.5
        return
    d = timer.delay()
    assert d in xs and min(xs) <= d <= max(xs)
    at_most = sum(1 for x in xs if x <= d)
    assert at_most / len(xs) >= p / 100  # nearest rank: at least p% of samples are <= d
    lo, hi = sorted((p, q))
    assert percentile(xs, lo) <= percentile(xs, hi)


@given(xs=samples, fixed=st.floats(min_value=0, max_value=10))
def test_hedge_timer_fixed_delay_wins(xs: list[float], fixed: float) -> None:
    timer = HedgeTimer(fixed, 50)
    for x in xs:
        timer.observe(x)
    assert timer.delay() == fixed


def test_hedge_timer_ignores_garbage_and_windows() -> None:
    timer = HedgeTimer(None, 100, min_samples=1, window=3)
    for x in (float("inf"), -1.0, 9.0, 1.0, 2.0, 3.0):
        timer.observe(x)
    assert list(timer.samples) == [1.0, 2.0, 3.0] and timer.delay() == 3.0
