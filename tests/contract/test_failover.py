"""Before the first byte reaches the client, every fault fails over: each client dialect by each
upstream dialect (the byte relay when they match, translation otherwise) by each fault, whole and
streamed, through the real server. With no target left, the client gets the right status in its
own dialect's error shape."""

from __future__ import annotations

import pytest
from tests.contract.harness import (
    CLIENTS,
    PRE_FAULTS,
    STREAM_ONLY,
    UPSTREAMS,
    Matrix,
    pre_fault,
    route_for,
)

from relaygate.testing import Fault, Reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODES = {"whole": False, "stream": True}


def _cases() -> list[tuple[str, str, str, str]]:
    out = []
    for client in CLIENTS:
        for upstream in UPSTREAMS:
            for fault in PRE_FAULTS:
                for mode, stream in MODES.items():
                    if fault == "503":
                        continue  # the same path as 500; kept for the exhausted case
                    if fault in STREAM_ONLY and not stream:
                        continue
                    if client == "gemini-array" and not stream:
                        continue  # its whole form is the gemini client's
                    out.append((client, upstream, fault, mode))
    return out


@pytest.mark.parametrize(("client", "upstream", "fault", "mode"), _cases())
async def test_fault_before_first_byte_fails_over(
    mx: Matrix, client: str, upstream: str, fault: str, mode: str
) -> None:
    a, b, _c = mx.ups[upstream]
    stream = MODES[mode]
    injected = pre_fault(fault)
    if injected is not None:
        a.script(injected)
    b.script(Reply(text="from b"))
    answer = await mx.ask(client, route_for(fault, upstream), stream=stream)
    c = CLIENTS[client]
    assert answer.status == 200, answer.body[:500]
    assert answer.backend == f"b{upstream}", answer.headers
    assert answer.attempts == 2
    text = c.stream_text(answer.body) if stream else c.text(answer.body)
    assert text == "from b"
    assert len(b.requests) == 1
    if fault == "slow":
        assert await a.wait_for_disconnects(1)  # the timed-out attempt's connection is closed
    if fault != "refused":
        assert len(a.requests) == 1


# Both targets fail: the error the client sees, by fault.
EXHAUSTED = {
    "503": (503, Fault(status=503)),
    "429": (429, Fault(status=429, retry_after=30)),
    "401": (502, Fault(status=401)),  # our key was refused: not the client's fault
    "reset": (502, Fault(reset=True)),
    "error_in_200": (502, Fault(error_in_200=True, cut_after=0)),
}
EXHAUSTED_CASES = [
    (client, upstream, fault, mode)
    for client in CLIENTS
    for upstream in UPSTREAMS
    for fault in EXHAUSTED
    for mode in MODES
    if not (client == "gemini-array" and mode == "whole")
]


@pytest.mark.parametrize(("client", "upstream", "fault", "mode"), EXHAUSTED_CASES)
async def test_no_target_left_errors_in_client_dialect(
    mx: Matrix, client: str, upstream: str, fault: str, mode: str
) -> None:
    a, b, _c = mx.ups[upstream]
    status, injected = EXHAUSTED[fault]
    if fault == "error_in_200" and upstream == "ant":
        status = 503  # the emulated Anthropic error body says overloaded_error
    a.script(injected)
    b.script(injected)
    answer = await mx.ask(client, f"fallback-{upstream}", stream=MODES[mode])
    assert answer.status == status, answer.body[:500]
    message = CLIENTS[client].error(answer.status, answer.body)
    assert "every target of fallback-" in message, message
    assert f"a{upstream}" in message and f"b{upstream}" in message
    assert answer.attempts == 2 and answer.backend == f"b{upstream}"
    if fault == "429":
        assert int(answer.headers.get("retry-after", 0)) >= 1, answer.headers
    assert "sk-contract" not in answer.body.decode()
