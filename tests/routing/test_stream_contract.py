"""The streaming failure contract for each client dialect that has landed: an OpenAI upstream
cut after its first events must end the client's stream with a terminal error event in the
client's own dialect, never a clean close; before the first byte, the attempt fails instead (so a
strategy may still fail over)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import openai_backend

from relaygate import dialects
from relaygate.backends.base import CallContext
from relaygate.canonical import GatewayError
from relaygate.config import parse_config
from relaygate.gateway import Gateway, build_gateway
from relaygate.routing.attempt import Call, Outcome, open_attempt
from relaygate.testing import OpenAIEmulator, Reply
from relaygate.testing._emulator import Fault

KEY = "sk-test-key-123456"

CASES: dict[str, tuple[dict[str, Any], bytes]] = {
    dialects.OPENAI_CHAT: ({"messages": [{"role": "user", "content": "hi"}]}, b'data: {"error"'),
    dialects.ANTHROPIC: (
        {"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
        b"event: error",
    ),
    dialects.OPENAI_RESPONSES: ({"input": "hi"}, b"response.failed"),
    dialects.GEMINI: ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, b'"error"'),
}


def _dialect(name: str) -> Any:
    try:
        return dialects.get(name)
    except ImportError:
        pytest.skip(f"the {name} dialect has not landed yet")


def _gateway(upstream: OpenAIEmulator) -> Gateway:
    return build_gateway(
        parse_config({"plugins": {"backends": [openai_backend(upstream)]}}, env={})
    )


async def _attempt(gw: Gateway, name: str, *, canonical: bool) -> Outcome:
    target = gw.router.resolve("emu/gpt-4o-mini").targets[0]
    body, _ = CASES[name]
    call = Call(
        client=_dialect(name),
        body={"model": "emu/gpt-4o-mini", "stream": True, **body},
        stream=True,
        ctx=CallContext("t1"),
    )
    if canonical:  # force the translation path even for openai-chat
        call.want_canonical = False
        target.backend.dialect = None  # type: ignore[misc]
    return await open_attempt(call, target)


@pytest.mark.parametrize("canonical", [False, True], ids=["relay", "translated"])
@pytest.mark.parametrize("name", list(CASES))
async def test_cut_stream_ends_with_terminal_error(name: str, canonical: bool) -> None:
    if name != dialects.OPENAI_CHAT and not canonical:
        pytest.skip("byte relay only when client and backend dialects match")
    _dialect(name)
    async with OpenAIEmulator(api_key=KEY) as upstream:
        upstream.script(Fault(cut_after=4, reply=Reply(text="a fairly long answer", chunk_size=2)))
        gw = _gateway(upstream)
        try:
            outcome = await _attempt(gw, name, canonical=canonical)
            assert outcome.chunks is not None
            data = b"".join([chunk async for chunk in outcome.chunks])
        finally:
            await gw.aclose()
    marker = CASES[name][1]
    assert marker in data, data[-300:]
    assert data.rstrip().endswith(b"[DONE]") or data.rfind(marker) > len(data) // 2
    assert outcome.error is not None and not outcome.completed


@pytest.mark.parametrize("name", list(CASES))
async def test_failure_before_first_byte_raises(name: str) -> None:
    _dialect(name)
    async with OpenAIEmulator(api_key=KEY) as upstream:
        upstream.script(Fault(cut_after=0))
        gw = _gateway(upstream)
        try:
            with pytest.raises(GatewayError):
                await _attempt(gw, name, canonical=name != dialects.OPENAI_CHAT)
        finally:
            await gw.aclose()
