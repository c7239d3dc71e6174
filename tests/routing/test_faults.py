"""Fault injection through the OpenAI emulator, end to end through a real relaygate server:
every fault kind against fallback, then race / hedge / balance / consensus, the streaming
failure contract, breaker visibility in /health, and client disconnects."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from tests.conftest import RunningGateway, openai_backend, serve_gateway

from relaygate.testing import OpenAIEmulator, Reply
from relaygate.testing._emulator import Fault

KEY = "sk-test-key-123456"
MSG = [{"role": "user", "content": "hi"}]


@contextlib.asynccontextmanager
async def upstreams(n: int) -> AsyncIterator[list[OpenAIEmulator]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(OpenAIEmulator(api_key=KEY)) for _ in range(n)]


def config(
    ups: list[OpenAIEmulator], route: dict[str, Any] | None = None, **top: Any
) -> dict[str, Any]:
    names = "abcdefg"
    cfg: dict[str, Any] = {
        "plugins": {
            "backends": [
                openai_backend(u, names[i], models={"items": [{"native_id": "gpt-4o-mini"}]})
                for i, u in enumerate(ups)
            ]
        },
        "retry": {"attempts": 2, "backoff_base": 0.001, "backoff_max": 0.002, "retry_after_cap": 1},
        **top,
    }
    if route is not None:
        cfg["routes"] = [
            {"name": "r", "targets": [f"{names[i]}/gpt-4o-mini" for i in range(len(ups))], **route}
        ]
    return cfg


async def chat(
    gw: RunningGateway,
    http: aiohttp.ClientSession,
    model: str = "r",
    *,
    stream: bool = False,
    **extra: Any,
) -> tuple[int, dict[str, str], bytes]:
    body = {"model": model, "messages": MSG, "stream": stream, **extra}
    async with http.post(gw.url + "/v1/chat/completions", json=body) as r:
        return r.status, dict(r.headers), await r.read()


FAULTS = {
    "500": Fault(status=500),
    "503": Fault(status=503),
    "429": Fault(status=429, retry_after=30),  # beyond the cap: fail over, don't wait
    "reset": Fault(reset=True),
    "malformed": Fault(malformed=True),
    "error_in_200": Fault(error_in_200=True),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fallback_over_each_fault(fault: str, stream: bool) -> None:
    async with upstreams(2) as (a, b):
        a.script(FAULTS[fault], FAULTS[fault])
        b.script(Reply(text="from b"))
        async with (
            serve_gateway(config([a, b], {"strategy": "fallback"})) as gw,
            aiohttp.ClientSession() as http,
        ):
            status, headers, body = await chat(gw, http, stream=stream)
    assert status == 200, body
    assert headers["x-relaygate-backend"] == "b"
    assert b"from b" in body or b"fro" in body
    attempts = int(headers["x-relaygate-attempts"])
    assert attempts == (2 if fault == "429" else 3)  # 429 beyond the cap is not retried here


async def test_retry_after_within_cap_retries_same_backend() -> None:
    async with upstreams(1) as (a,):
        a.script(Fault(status=429, retry_after=0.01), Reply(text="second time"))
        async with serve_gateway(config([a])) as gw, aiohttp.ClientSession() as http:
            status, headers, body = await chat(gw, http, "a/gpt-4o-mini")
    assert status == 200 and b"second time" in body and headers["x-relaygate-attempts"] == "2"


async def test_401_sets_key_aside_and_rotates() -> None:
    async with upstreams(1) as (a,):
        cfg = config([a])
        cfg["plugins"]["backends"][0]["config"].pop("api_key")
        cfg["plugins"]["backends"][0]["config"]["api_keys"] = ["sk-revoked-000000", KEY]
        async with serve_gateway(cfg) as gw, aiohttp.ClientSession() as http:
            status, headers, _ = await chat(gw, http, "a/gpt-4o-mini")
            keys = gw.gateway.backends["a"].describe()["keys"]
            async with http.get(gw.url + "/health") as r:
                health = await r.text()
    assert status == 200 and headers["x-relaygate-attempts"] == "2"
    assert keys[0]["reason"] == "auth_failed" and not keys[0]["available"]
    assert "sk-revoked" not in health and KEY not in health


async def test_connect_refused_falls_over() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    async with upstreams(2) as (a, b):
        cfg = config([a, b], {"strategy": "fallback"})
        cfg["plugins"]["backends"][0]["config"]["base_url"] = f"http://127.0.0.1:{dead_port}/v1"
        async with serve_gateway(cfg) as gw, aiohttp.ClientSession() as http:
            status, headers, _ = await chat(gw, http, stream=True)
    assert status == 200 and headers["x-relaygate-backend"] == "b"


async def test_route_first_token_timeout_falls_over_and_closes_slow_upstream() -> None:
    async with upstreams(2) as (a, b):
        a.script(Reply(first_delay=5), Reply(first_delay=5))
        route = {
            "strategy": "fallback",
            "timeouts": {"first_token": 0.05},
            "retry": {"attempts": 1},
        }
        async with serve_gateway(config([a, b], route)) as gw, aiohttp.ClientSession() as http:
            status, headers, body = await chat(gw, http, stream=True)
            assert await a.wait_for_disconnects(1)
    assert status == 200 and headers["x-relaygate-backend"] == "b" and b"[DONE]" in body


async def test_stream_cut_after_first_byte_ends_with_terminal_error() -> None:
    async with upstreams(2) as (a, b):
        a.script(Fault(cut_after=3, reply=Reply(text="a long answer that is cut")))
        async with (
            serve_gateway(config([a, b], {"strategy": "fallback"})) as gw,
            aiohttp.ClientSession() as http,
        ):
            status, headers, body = await chat(gw, http, stream=True)
    assert status == 200 and headers["x-relaygate-backend"] == "a"
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    last = orjson.loads(events[-2][len(b"data: ") :])
    assert "error" in last  # a terminal error event, never a clean close
    assert len(b.requests) == 0  # no fail-over after the first byte


async def test_race_winner_and_loser_closed() -> None:
    async with upstreams(3) as (a, b, c):
        a.script(Reply(first_delay=5))
        b.script(Reply(text="fast b"))
        c.script(Reply(first_delay=5))
        async with (
            serve_gateway(config([a, b, c], {"strategy": "race"})) as gw,
            aiohttp.ClientSession() as http,
        ):
            status, headers, body = await chat(gw, http, stream=True)
            assert await a.wait_for_disconnects(1) and await c.wait_for_disconnects(1)
    assert status == 200 and headers["x-relaygate-backend"] == "b"
    assert headers["x-relaygate-attempts"] == "3" and b"[DONE]" in body


async def test_race_survives_failures() -> None:
    async with upstreams(2) as (a, b):
        a.script(Fault(status=500))
        async with (
            serve_gateway(config([a, b], {"strategy": "race"})) as gw,
            aiohttp.ClientSession() as http,
        ):
            status, headers, _ = await chat(gw, http)
    assert status == 200 and headers["x-relaygate-backend"] == "b"


async def test_hedge_after_delay_loser_closed() -> None:
    async with upstreams(2) as (a, b):
        a.script(Reply(first_delay=5))
        route = {"strategy": "hedge", "hedge_delay": 0.02}
        async with serve_gateway(config([a, b], route)) as gw, aiohttp.ClientSession() as http:
            status, headers, _ = await chat(gw, http, stream=True)
            assert await a.wait_for_disconnects(1)
    assert status == 200 and headers["x-relaygate-backend"] == "b"


async def test_hedge_fast_primary_sends_one_request() -> None:
    async with upstreams(2) as (a, b):
        route = {"strategy": "hedge", "hedge_delay": 5}
        async with serve_gateway(config([a, b], route)) as gw, aiohttp.ClientSession() as http:
            status, headers, _ = await chat(gw, http)
    assert status == 200 and headers["x-relaygate-backend"] == "a" and len(b.requests) == 0


async def test_balance_round_robin_and_failover() -> None:
    async with upstreams(2) as (a, b):
        route = {"strategy": "balance", "balance": "round_robin"}
        async with serve_gateway(config([a, b], route)) as gw, aiohttp.ClientSession() as http:
            served = [(await chat(gw, http))[1]["x-relaygate-backend"] for _ in range(4)]
            a.script(Fault(status=500), Fault(status=500))
            b.script(Fault(status=500), Fault(status=500))
            status, _, body = await chat(gw, http, stream=True)
    assert served == ["a", "b", "a", "b"]
    assert status == 502 and b"every target of r failed" in body


async def test_consensus_end_to_end() -> None:
    async with upstreams(3) as (a, b, c):
        a.script(Reply(text="Paris"))
        b.script(Reply(text="paris."))
        c.script(Reply(text="Lyon"))
        async with (
            serve_gateway(config([a, b, c], {"strategy": "consensus"})) as gw,
            aiohttp.ClientSession() as http,
        ):
            status, headers, body = await chat(gw, http)
            refused = await chat(gw, http, stream=True)
            a.script(Reply(text="x"))
            b.script(Reply(text="y"))
            c.script(Reply(text="z"))
            split = await chat(gw, http)
    assert status == 200, body
    obj = orjson.loads(body)
    assert obj["choices"][0]["message"]["content"] == "Paris"
    assert obj["relaygate"]["consensus"]["agreed"] == 2
    assert (
        headers["x-relaygate-consensus"] == "agreed=2/3; quorum=2; mode=text; winner=a/gpt-4o-mini"
    )
    assert refused[0] == 400 and b"stream: false" in refused[2]
    assert orjson.loads(refused[2])["error"]["param"] == "stream"
    assert split[0] == 502 and b"consensus not reached" in split[2]


async def test_breaker_opens_and_shows_in_health() -> None:
    async with upstreams(2) as (a, b):
        a.script(*[Fault(status=500)] * 4)
        cfg = config(
            [a, b], {"strategy": "fallback"}, breaker={"failure_threshold": 2, "reset_timeout": 60}
        )
        async with serve_gateway(cfg) as gw, aiohttp.ClientSession() as http:
            await chat(gw, http)
            async with http.get(gw.url + "/health") as r:
                health = await r.json()
            before = len(a.requests)
            status, headers, _ = await chat(gw, http)
    assert health["status"] == "degraded"
    assert health["backends"]["a"]["breaker"] == "open"
    assert health["backends"]["b"]["breaker"] == "closed"
    assert health["backends"]["b"]["latency_ms"] is not None
    assert status == 200 and headers["x-relaygate-attempts"] == "1" and len(a.requests) == before


async def test_health_probes_measure_latency() -> None:
    async with upstreams(1) as (a,):
        cfg = config([a], health={"probes": True, "interval": 60})
        async with serve_gateway(cfg) as gw, aiohttp.ClientSession() as http:
            monitor = gw.app.state["health"]
            await monitor.probe_all(5)
            async with http.get(gw.url + "/health") as r:
                health = await r.json()
    probe = health["backends"]["a"]["probe"]
    assert probe["ok"] is True and probe["latency_ms"] >= 0


async def test_client_disconnect_mid_stream_closes_upstream() -> None:
    async with upstreams(1) as (a,):
        a.script(Reply(text="x" * 400, chunk_size=1, delay=0.01))
        async with serve_gateway(config([a])) as gw, aiohttp.ClientSession() as http:
            body = {"model": "a/gpt-4o-mini", "messages": MSG, "stream": True}
            async with http.post(gw.url + "/v1/chat/completions", json=body) as r:
                await r.content.readany()
                r.close()
            assert await a.wait_for_disconnects(1)


async def test_loop_guard_refused() -> None:
    async with (
        upstreams(1) as (a,),
        serve_gateway(config([a])) as gw,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={"model": "a/gpt-4o-mini", "messages": MSG},
            headers={"x-relaygate-loop-guard": gw.app.loop_guard},
        ) as r:
            assert r.status == 508
        await chat(gw, http, "a/gpt-4o-mini")
    assert a.requests[-1].headers["x-relaygate-loop-guard"] == gw.app.loop_guard


@pytest.mark.parametrize("strategy", ["race", "hedge", "fallback"])
async def test_client_disconnect_before_first_byte_cancels_every_attempt(strategy: str) -> None:
    async with upstreams(2) as (a, b):
        a.script(Reply(first_delay=5))
        b.script(Reply(first_delay=5))
        route = {"strategy": strategy, "hedge_delay": 0.01}
        if strategy != "hedge":
            route.pop("hedge_delay")
        async with serve_gateway(config([a, b], route)) as gw, aiohttp.ClientSession() as http:
            body = {"model": "r", "messages": MSG, "stream": True}
            with contextlib.suppress(TimeoutError):
                async with http.post(
                    gw.url + "/v1/chat/completions",
                    json=body,
                    timeout=aiohttp.ClientTimeout(total=0.3),
                ) as r:
                    await r.read()
            expected = 1 if strategy == "fallback" else 2
            assert await a.wait_for_disconnects(1)
            if expected == 2:
                assert await b.wait_for_disconnects(1)
            assert len(b.requests) == expected - 1  # fallback never reached b
