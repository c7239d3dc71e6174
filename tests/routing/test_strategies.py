"""Strategies against scripted openers: ordering, retries, breakers, race/hedge cancellation,
consensus voting. No network; the only waiting is on events."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest
from tests.routing.fakes import RETRY, SLEPT, Script, fail, gated, ok, plan

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.config import RetryConfig
from relaygate.routing.breaker import BreakerConfig
from relaygate.routing.clock import ManualClock
from relaygate.routing.consensus import as_json
from relaygate.routing.hedge import run_hedge
from relaygate.routing.state import RoutingState
from relaygate.routing.strategies import Execution, execute


async def test_fallback_retries_then_moves_on() -> None:
    script = Script({"a": [fail()], "b": [ok("from b")]})
    ex = Execution()
    out = await execute(plan("fallback", ["a", "b"]), script, RETRY, ex)
    assert out.target.backend.id == "b"
    assert script.calls == ["a", "a", "b"]
    assert [a.outcome for a in ex.attempts] == ["upstream_error", "upstream_error", "ok"]


async def test_retry_after_honoured_up_to_cap() -> None:
    SLEPT.clear()
    script = Script({"a": [fail(ErrorKind.RATE_LIMIT, retry_after=3.0), ok()]})
    await execute(plan("fallback", ["a"]), script, RETRY, Execution())
    assert SLEPT == [3.0]
    # Retry-After beyond the cap: no wait here, the next target is tried at once.
    SLEPT.clear()
    script = Script({"a": [fail(ErrorKind.RATE_LIMIT, retry_after=60.0)], "b": [ok()]})
    out = await execute(plan("fallback", ["a", "b"]), script, RETRY, Execution())
    assert out.target.backend.id == "b" and SLEPT == [] and script.calls == ["a", "b"]


async def test_client_error_stops_at_once() -> None:
    script = Script({"a": [fail(ErrorKind.INVALID_REQUEST)], "b": [ok()]})
    with pytest.raises(GatewayError) as info:
        await execute(plan("fallback", ["a", "b"]), script, RETRY, Execution())
    assert info.value.kind is ErrorKind.INVALID_REQUEST and script.calls == ["a"]


async def test_breaker_skips_open_backend_then_probes() -> None:
    clock = ManualClock()
    state = RoutingState(
        BreakerConfig(failure_threshold=2, reset_timeout=10),
        clock=clock,
        sleep=lambda s: asyncio.sleep(0),
    )
    script = Script({"a": [fail()], "b": [ok()]})
    p = plan("fallback", ["a", "b"], state=state)
    await execute(p, script, RETRY, Execution())  # a fails twice → open
    assert state.breaker("a").current() == "open"
    script.calls.clear()
    out = await execute(p, script, RETRY, Execution())
    assert script.calls == ["b"] and out.target.backend.id == "b"
    clock.advance(10)
    script.plans["a"] = [ok()]
    out = await execute(p, script, RETRY, Execution())
    assert out.target.backend.id == "a" and state.breaker("a").current() == "closed"


async def test_all_breakers_open_is_503_with_retry_after() -> None:
    state = RoutingState(BreakerConfig(failure_threshold=1, reset_timeout=7), clock=ManualClock())
    state.breaker("a").failure()
    with pytest.raises(GatewayError) as info:
        await execute(
            plan("fallback", ["a"], state=state), Script({"a": [ok()]}), RETRY, Execution()
        )
    assert info.value.status == 503 and info.value.retry_after == 7


async def test_balance_round_robin_rotates() -> None:
    p = plan("balance", ["a", "b", "c"], balance="round_robin")
    script = Script({"a": [ok()], "b": [ok()], "c": [ok()]})
    served = [(await execute(p, script, RETRY, Execution())).target.backend.id for _ in range(6)]
    assert served == ["a", "b", "c", "a", "b", "c"]


async def test_balance_weighted_follows_weights() -> None:
    state = RoutingState(rng=random.Random(7))
    p = plan("balance", ["a", "b"], weights=[9, 1], state=state)
    script = Script({"a": [ok()], "b": [ok()]})
    served = [(await execute(p, script, RETRY, Execution())).target.backend.id for _ in range(400)]
    assert 300 < served.count("a") < 395


async def test_balance_least_latency_and_least_busy() -> None:
    state = RoutingState()
    state.stat("a").observe(0.9)
    state.stat("b").observe(0.1)
    p = plan("balance", ["a", "b"], balance="least_latency", state=state)
    script = Script({"a": [ok()], "b": [ok()]})
    assert (await execute(p, script, RETRY, Execution())).target.backend.id == "b"
    state.stat("b").in_flight = 3
    p = plan("balance", ["a", "b"], balance="least_busy", state=state)
    assert (await execute(p, script, RETRY, Execution())).target.backend.id == "a"


async def test_balance_puts_open_circuits_last() -> None:
    state = RoutingState(BreakerConfig(failure_threshold=1))
    state.breaker("a").failure()
    p = plan("balance", ["a", "b"], balance="round_robin", state=state)
    script = Script({"a": [ok()], "b": [ok()]})
    for _ in range(3):
        assert (await execute(p, script, RETRY, Execution())).target.backend.id == "b"


async def test_race_first_wins_losers_cancelled() -> None:
    never = asyncio.Event()
    cancelled: list[str] = []
    script = Script(
        {"a": [gated(never, ok(), cancelled)], "b": [ok("b")], "c": [gated(never, ok(), cancelled)]}
    )
    ex = Execution()
    out = await execute(plan("race", ["a", "b", "c"]), script, RETRY, ex)
    assert out.target.backend.id == "b"
    assert sorted(cancelled) == ["a", "c"]
    assert sorted(a.outcome for a in ex.attempts) == ["cancelled", "cancelled", "ok"]


async def test_race_all_fail_reports_each() -> None:
    script = Script({"a": [fail()], "b": [fail(ErrorKind.TIMEOUT)]})
    with pytest.raises(GatewayError) as info:
        await execute(plan("race", ["a", "b"]), script, RETRY, Execution())
    assert "a" in info.value.message and "b" in info.value.message


async def test_race_cancelled_by_client_cancels_every_attempt() -> None:
    never = asyncio.Event()
    cancelled: list[str] = []
    script = Script({"a": [gated(never, ok(), cancelled)], "b": [gated(never, ok(), cancelled)]})
    task = asyncio.create_task(execute(plan("race", ["a", "b"]), script, RETRY, Execution()))
    while len(script.calls) < 2:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == ["a", "b"]


async def test_hedge_fires_after_delay_and_cancels_slow_one() -> None:
    never = asyncio.Event()
    cancelled: list[str] = []
    script = Script({"a": [gated(never, ok(), cancelled)], "b": [ok("b")]})
    out = await run_hedge(plan("hedge", ["a", "b"], hedge_delay=0.01), script, RETRY, Execution())
    assert out.target.backend.id == "b" and cancelled == ["a"]


async def test_hedge_primary_fast_no_extra_attempt() -> None:
    script = Script({"a": [ok()], "b": [ok()]})
    out = await run_hedge(plan("hedge", ["a", "b"], hedge_delay=5), script, RETRY, Execution())
    assert out.target.backend.id == "a" and script.calls == ["a"]


async def test_hedge_failure_replaced_at_once_and_capped() -> None:
    script = Script({"a": [fail()], "b": [fail()], "c": [ok()]})
    with pytest.raises(GatewayError):
        await run_hedge(
            plan("hedge", ["a", "b", "c"], hedge_delay=5, hedge_max_extra=1),
            script,
            RETRY,
            Execution(),
        )
    assert script.calls == ["a", "b"]  # one extra attempt only


# ----------------------------------------------------------------------------- consensus


def _consensus(ids: list[str], **route: object) -> object:
    return plan("consensus", ids, **route)  # type: ignore[arg-type]


async def test_consensus_text_majority() -> None:
    script = Script({"a": [ok("Paris.")], "b": [ok("paris")], "c": [ok("Lyon")]})
    p = plan("consensus", ["a", "b", "c"])
    out = await execute(p, script, RETRY, Execution())
    meta = orjson.loads(out.body or b"")["relaygate"]["consensus"]
    assert meta["agreed"] == 2 and meta["quorum"] == 2 and meta["mode"] == "text"
    assert [v["agrees"] for v in meta["votes"]] == [True, True, False]
    assert (b"x-relaygate-consensus", b"agreed=2/3; quorum=2; mode=text; winner=a/m") in out.headers
    assert out.usage.input_tokens == 3  # every model's tokens count


async def test_consensus_weights_beat_count() -> None:
    script = Script({"a": [ok("yes")], "b": [ok("no")], "c": [ok("no")]})
    p = plan("consensus", ["a", "b", "c"], weights=[5, 1, 1], quorum=1)
    out = await execute(p, script, RETRY, Execution())
    assert out.target.backend.id == "a"


async def test_consensus_below_quorum_fails_closed() -> None:
    script = Script({"a": [ok("x")], "b": [ok("y")], "c": [fail()]})
    with pytest.raises(GatewayError) as info:
        await execute(plan("consensus", ["a", "b", "c"]), script, RETRY, Execution())
    assert info.value.code == "consensus_not_reached" and info.value.status == 502


async def test_consensus_json_per_field_with_confidence() -> None:
    answers = [
        '{"verdict": "safe", "score": 1, "confidence": 0.9}',
        '```json\n{"verdict": "safe", "score": 2, "confidence": 0.6}\n```',
        '{"verdict": "malicious", "score": 2, "confidence": 80}',
    ]
    script = Script({"a": [ok(answers[0])], "b": [ok(answers[1])], "c": [ok(answers[2])]})
    out = await execute(plan("consensus", ["a", "b", "c"]), script, RETRY, Execution())
    body = orjson.loads(out.body or b"")
    meta = body["relaygate"]["consensus"]
    assert meta["mode"] == "json" and meta["fields"] == {"verdict": 2, "score": 2}
    composed = as_json(body["text"])  # b's own answer matches every winning value
    assert composed is not None
    assert composed["verdict"] == "safe" and composed["score"] == 2
    assert [v["confidence"] for v in meta["votes"]] == [0.9, 0.6, 0.8]
    assert composed["confidence"] == 0.6  # from the answer that matched every field (b)


async def test_consensus_client_error_is_reported_as_is() -> None:
    script = Script(
        {"a": [fail(ErrorKind.INVALID_REQUEST)], "b": [fail(ErrorKind.INVALID_REQUEST)]}
    )
    with pytest.raises(GatewayError) as info:
        await execute(plan("consensus", ["a", "b"]), script, RetryConfig(attempts=1), Execution())
    assert info.value.status == 400


async def test_consensus_json_composes_when_no_answer_matches_every_field() -> None:
    answers = ['{"a": 1, "b": 9}', '{"a": 1, "b": 8}', '{"a": 7, "b": 2}', '{"a": 6, "b": 2}']
    script = Script({k: [ok(t)] for k, t in zip("wxyz", answers, strict=True)})
    out = await execute(plan("consensus", list("wxyz"), quorum=2), script, RETRY, Execution())
    body = orjson.loads(out.body or b"")
    assert orjson.loads(body["text"]) == {"a": 1, "b": 2}  # re-rendered in the client dialect
    assert body["relaygate"]["consensus"]["fields"] == {"a": 2, "b": 2}
