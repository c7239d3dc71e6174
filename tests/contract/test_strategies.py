"""Every strategy under faults, for each client dialect and upstream dialect: balance, race and
hedge fail over before the first byte; race and hedge losers have their upstream connection
closed; consensus votes past a failed voter and refuses streams in the client's dialect; a
client that leaves — before or after the first byte — cancels every upstream attempt."""

from __future__ import annotations

import contextlib

import aiohttp
import pytest
from tests.contract.harness import CLIENTS, HANG, LONG, UPSTREAMS, Matrix

from relaygate.testing import Fault, Reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

STREAM_CLIENTS = list(CLIENTS)
WHOLE_CLIENTS = [c for c in CLIENTS if c != "gemini-array"]


def _each(clients: list[str]) -> list[tuple[str, str]]:
    return [(c, u) for c in clients for u in UPSTREAMS]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("strategy", ["balance", "race", "hedge"])
@pytest.mark.parametrize(("client", "upstream"), _each(STREAM_CLIENTS))
async def test_strategy_fails_over_before_first_byte(
    mx: Matrix, client: str, upstream: str, strategy: str, stream: bool
) -> None:
    if client == "gemini-array" and not stream:
        pytest.skip("its whole form is the gemini client's")
    a, b, _c = mx.ups[upstream]
    a.script(Fault(status=500))
    b.script(Reply(text="from b"))
    answer = await mx.ask(client, f"{strategy}-{upstream}", stream=stream)
    c = CLIENTS[client]
    assert answer.status == 200 and answer.backend == f"b{upstream}", answer.body[:300]
    assert answer.attempts == 2  # hedge replaced the failed attempt at once, not after 5 s
    assert (c.stream_text(answer.body) if stream else c.text(answer.body)) == "from b"


@pytest.mark.parametrize("strategy", ["race", "fasthedge"])
@pytest.mark.parametrize(("client", "upstream"), _each(STREAM_CLIENTS))
async def test_losers_upstream_connection_closed(
    mx: Matrix, client: str, upstream: str, strategy: str
) -> None:
    a, b, _c = mx.ups[upstream]
    a.script(Reply(first_delay=HANG))
    b.script(Reply(text="fast b"))
    answer = await mx.ask(client, f"{strategy}-{upstream}", stream=True)
    assert answer.status == 200 and answer.backend == f"b{upstream}"
    assert answer.attempts == 2
    assert CLIENTS[client].stream_text(answer.body) == "fast b"
    assert await a.wait_for_disconnects(1)  # the emulator saw the loser's connection close


@pytest.mark.parametrize("fault", ["500", "malformed", "reset"])
@pytest.mark.parametrize(("client", "upstream"), _each(WHOLE_CLIENTS))
async def test_consensus_votes_past_a_failed_voter(
    mx: Matrix, client: str, upstream: str, fault: str
) -> None:
    a, b, c = mx.ups[upstream]
    a.script(
        {"500": Fault(status=500), "malformed": Fault(malformed=True), "reset": Fault(reset=True)}[
            fault
        ]
    )
    b.script(Reply(text="Paris"))
    c.script(Reply(text="paris."))
    answer = await mx.ask(client, f"consensus-{upstream}", stream=False)
    assert answer.status == 200, answer.body[:300]
    assert CLIENTS[client].text(answer.body) == "Paris"
    assert answer.headers["x-relaygate-consensus"].startswith("agreed=2/3; quorum=2;")
    assert answer.attempts == 3


@pytest.mark.parametrize(("client", "upstream"), _each(WHOLE_CLIENTS))
async def test_consensus_below_quorum_and_stream_refused_in_client_dialect(
    mx: Matrix, client: str, upstream: str
) -> None:
    a, b, c = mx.ups[upstream]
    a.script(Fault(status=500))
    b.script(Reply(text="yes"))
    c.script(Reply(text="no"))
    split = await mx.ask(client, f"consensus-{upstream}", stream=False)
    assert split.status == 502
    assert "consensus not reached" in CLIENTS[client].error(502, split.body)
    refused = await mx.ask(client, f"consensus-{upstream}", stream=True)
    assert refused.status == 400
    assert "stream: false" in CLIENTS[client].error(400, refused.body)
    assert len(a.requests) == 1  # the refused stream never reached an upstream


@pytest.mark.parametrize(("client", "upstream"), _each(STREAM_CLIENTS))
async def test_client_disconnect_mid_stream_closes_upstream(
    mx: Matrix, client: str, upstream: str
) -> None:
    a, _b, _c = mx.ups[upstream]
    a.script(Reply(text=LONG * 8, chunk_size=1, delay=0.01))
    c = CLIENTS[client]
    model = f"fallback-{upstream}"
    async with mx.http.post(
        mx.gw.url + c.path(model, True), json=c.body(model, True), headers=c.headers
    ) as r:
        assert r.status == 200
        await r.content.readany()
        r.close()
    assert await a.wait_for_disconnects(1)


@pytest.mark.parametrize("strategy", ["race", "fasthedge", "fallback"])
@pytest.mark.parametrize("client", STREAM_CLIENTS)
async def test_client_disconnect_before_first_byte_cancels_every_attempt(
    mx: Matrix, client: str, strategy: str
) -> None:
    upstream = "ant" if client == "openai-chat" else "oai"  # a translated path
    a, b, _c = mx.ups[upstream]
    a.script(Reply(first_delay=HANG))
    b.script(Reply(first_delay=HANG))
    c = CLIENTS[client]
    model = f"{strategy}-{upstream}"
    with contextlib.suppress(TimeoutError):
        async with mx.http.post(
            mx.gw.url + c.path(model, True),
            json=c.body(model, True),
            headers=c.headers,
            timeout=aiohttp.ClientTimeout(total=0.25),
        ) as r:
            await r.read()
    assert await a.wait_for_disconnects(1)
    if strategy == "fallback":
        assert b.requests == []
    else:
        assert await b.wait_for_disconnects(1)
