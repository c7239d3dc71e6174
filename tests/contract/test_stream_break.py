"""After the first byte reaches the client, nothing fails over: a stream that breaks ends with
exactly one terminal error event in the client's own dialect (never a clean close), the first
target keeps the request, and the other targets never hear of it — for every client dialect,
every upstream dialect (byte relay and translation) and every strategy that streams."""

from __future__ import annotations

import pytest
from tests.contract.harness import CLIENTS, FIRST_TEXT, HANG, LONG, UPSTREAMS, Matrix

from relaygate.testing import Fault, Reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

STREAMING = ("fallback", "balance", "race", "hedge")


def _breaks(upstream: str) -> dict[str, Fault]:
    reply = Reply(text=LONG, chunk_size=3)
    out = {"cut": Fault(cut_after=FIRST_TEXT[upstream], reply=reply)}
    if upstream in ("ant", "rsp"):  # their emulators can send an error event mid-stream
        # Paced, so the error event arrives after the first chunk went out (see below).
        paced = Reply(text=LONG, chunk_size=3, delay=0.005)
        out["error_event"] = Fault(error_in_200=True, cut_after=FIRST_TEXT[upstream], reply=paced)
    return out


CASES = [
    (client, upstream, kind, strategy)
    for client in CLIENTS
    for upstream in UPSTREAMS
    for kind in _breaks(upstream)
    for strategy in STREAMING
]


@pytest.mark.parametrize(("client", "upstream", "kind", "strategy"), CASES)
async def test_break_after_first_byte_ends_with_terminal_error(
    mx: Matrix, client: str, upstream: str, kind: str, strategy: str
) -> None:
    a, b, _c = mx.ups[upstream]
    a.script(_breaks(upstream)[kind])
    if strategy == "race":
        b.script(Reply(first_delay=HANG))  # a wins the race, then breaks
    else:
        b.script(Reply(text="never"))
    answer = await mx.ask(client, f"{strategy}-{upstream}", stream=True)
    if kind == "error_event" and answer.backend == f"b{upstream}":
        # The error event came in the same read as the first events: nothing had reached the
        # client yet, so failing over was allowed (and the better answer).
        assert strategy != "race" and answer.attempts == 2, answer.headers
        assert CLIENTS[client].stream_text(answer.body) == "never"
        return
    assert answer.status == 200 and answer.backend == f"a{upstream}", answer.headers
    message = CLIENTS[client].stream_error(answer.body)
    assert message
    assert "sk-contract" not in answer.body.decode()
    if strategy == "race":
        assert answer.attempts == 2  # the winner, and the loser cancelled at once
        assert await b.wait_for_disconnects(1)
    else:
        assert answer.attempts == 1
        assert b.requests == []  # no fail-over after the first byte


@pytest.mark.parametrize("upstream", list(UPSTREAMS))
@pytest.mark.parametrize("client", list(CLIENTS))
async def test_clean_stream_is_complete(mx: Matrix, client: str, upstream: str) -> None:
    """The control: the same stream uncut ends with the dialect's success terminal."""
    a, _b, _c = mx.ups[upstream]
    a.script(Reply(text=LONG, chunk_size=3))
    answer = await mx.ask(client, f"fallback-{upstream}", stream=True)
    assert answer.status == 200 and answer.attempts == 1
    assert CLIENTS[client].stream_text(answer.body) == LONG
