"""ResponsesEmulator: wire format checked with aiohttp, the openai SDK's types and its client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from relaygate.dialects.sse import SSEDecoder
from relaygate.testing._emulator import Fault, Reply, ToolCall
from relaygate.testing.responses_emulator import ResponsesEmulator

KEY = "sk-test-emulator"
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


async def _post(emu: ResponsesEmulator, body: Any, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            emu.base_url + "/v1/responses", json=body, headers=kw.pop("headers", _auth()), **kw
        ) as r,
    ):
        return r.status, dict(r.headers), await r.read()


def _events(raw: bytes) -> list[Any]:
    """Every SSE block validated as an SDK stream event, checked for name/type/sequence."""
    out = []
    for n, sse in enumerate(SSEDecoder().feed(raw)):
        event = EVENTS.validate_json(sse.data)
        assert sse.event == event.type
        assert event.sequence_number == n
        out.append(event)
    return out


async def test_default_echo_is_an_sdk_response() -> None:
    async with ResponsesEmulator(api_key=KEY) as emu:
        status, _, raw = await _post(
            emu,
            {
                "model": "gpt-5-mini",
                "input": "hi there",
                "instructions": "be nice",
                "temperature": 0.5,
            },
        )
        assert status == 200
        response = SDKResponse.model_validate_json(raw)
        assert response.output_text == "echo: hi there"
        assert response.status == "completed" and response.instructions == "be nice"
        assert response.temperature == 0.5
        assert emu.requests[-1].json["input"] == "hi there"
        # item-list input echoes the last user text
        _, _, raw = await _post(
            emu,
            {
                "model": "gpt-5-mini",
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "from items"}]}
                ],
            },
        )
        assert SDKResponse.model_validate_json(raw).output_text == "echo: from items"


async def test_auth_and_models() -> None:
    async with ResponsesEmulator(api_key=KEY) as emu, aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer sk-wrong"}):
            async with s.post(
                emu.base_url + "/v1/responses",
                json={"model": "gpt-5-mini", "input": "x"},
                headers=headers,
            ) as r:
                assert r.status == 401
                body = await r.json()
                assert body["error"]["code"] == "invalid_api_key"
                assert set(body["error"]) == {"message", "type", "param", "code"}
                assert "sk-wrong" not in body["error"]["message"]
        async with s.get(emu.base_url + "/v1/models", headers=_auth()) as r:
            listing = await r.json()
        assert listing["object"] == "list"
        assert [m["id"] for m in listing["data"]] == ["gpt-5-mini", "gpt-4.1"]
        assert all(m["object"] == "model" for m in listing["data"])


async def test_request_validation_errors() -> None:
    async with ResponsesEmulator() as emu:
        status, _, raw = await _post(emu, {"input": "x"})
        assert status == 400 and json.loads(raw)["error"]["param"] == "model"
        status, _, raw = await _post(emu, {"model": "gpt-5-mini"})
        assert status == 400 and json.loads(raw)["error"]["param"] == "input"
        status, _, raw = await _post(emu, {"model": "gpt-9", "input": "x"})
        assert status == 400 and json.loads(raw)["error"]["code"] == "model_not_found"


async def test_stream_with_reasoning_text_and_parallel_calls() -> None:
    reply = Reply(
        text="Let me check.",
        thinking="Two cities.",
        thinking_signature="gAAAAB-enc",
        tool_calls=[
            ToolCall("weather", {"city": "Paris"}, id="call_p"),
            ToolCall("weather", {"city": "Rome"}),
        ],
        input_tokens=900,
        output_tokens=120,
        cache_read_tokens=512,
        cache_write_tokens=64,
        reasoning_tokens=80,
    )
    async with ResponsesEmulator() as emu:
        emu.script(reply)
        status, headers, raw = await _post(
            emu, {"model": "gpt-5-mini", "input": "go", "stream": True}
        )
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = _events(raw)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds
    # each call: added → several argument deltas → done → item done, in output order
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert {e.output_index for e in deltas} == {2, 3} and len(deltas) > 2
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(event)
    final = state._completed_response
    assert final is not None
    assert final.output_text == "Let me check."
    reasoning, _, call_p, call_r = final.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == "gAAAAB-enc"
    assert call_p.type == "function_call" and json.loads(call_p.arguments) == {"city": "Paris"}
    assert call_p.call_id == "call_p" and call_r.type == "function_call" and call_r.call_id
    usage = final.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (900, 120, 1020)
    assert usage.input_tokens_details.cached_tokens == 512
    assert usage.input_tokens_details.cache_write_tokens == 64
    assert usage.output_tokens_details.reasoning_tokens == 80


async def test_incomplete_when_max_output_tokens() -> None:
    async with ResponsesEmulator() as emu:
        emu.script(
            Reply(text="cut", stop_reason="max_output_tokens"),
            Reply(text="cut", stop_reason="max_output_tokens"),
        )
        _, _, raw = await _post(emu, {"model": "gpt-5-mini", "input": "x"})
        response = SDKResponse.model_validate_json(raw)
        assert response.status == "incomplete"
        assert response.incomplete_details is not None
        assert response.incomplete_details.reason == "max_output_tokens"
        _, _, raw = await _post(emu, {"model": "gpt-5-mini", "input": "x", "stream": True})
        assert _events(raw)[-1].type == "response.incomplete"


async def test_official_client_create_and_stream() -> None:
    async with ResponsesEmulator(api_key=KEY) as emu:
        client = openai.AsyncOpenAI(base_url=emu.base_url + "/v1", api_key=KEY, max_retries=0)
        try:
            emu.script(
                Reply(text="plain"),
                Reply(text="streamed text", tool_calls=[ToolCall("f", {"a": 1})]),
            )
            created = await client.responses.create(model="gpt-5-mini", input="hi")
            assert created.output_text == "plain"
            async with client.responses.stream(model="gpt-5-mini", input="hi") as stream:
                deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
                final = await stream.get_final_response()
            assert "".join(deltas) == "streamed text" == final.output_text
            assert [o.type for o in final.output] == ["message", "function_call"]
            page = await client.models.list()
            assert [m.id for m in page.data] == ["gpt-5-mini", "gpt-4.1"]
        finally:
            await client.close()


async def test_status_fault_with_retry_after_reaches_the_sdk() -> None:
    async with ResponsesEmulator(api_key=KEY) as emu:
        emu.script(Fault(status=429, message="Rate limit reached", retry_after=2))
        status, headers, raw = await _post(emu, {"model": "gpt-5-mini", "input": "x"})
        assert status == 429 and headers["Retry-After"] == "2"
        assert json.loads(raw)["error"] == {
            "message": "Rate limit reached",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        client = openai.AsyncOpenAI(base_url=emu.base_url + "/v1", api_key=KEY, max_retries=0)
        try:
            emu.script(Fault(status=500, message="boom"))
            with pytest.raises(openai.InternalServerError) as info:
                await client.responses.create(model="gpt-5-mini", input="x")
            assert info.value.message == "boom" or "boom" in str(info.value)
        finally:
            await client.close()


async def test_malformed_and_error_in_200_faults() -> None:
    async with ResponsesEmulator() as emu:
        emu.script(
            Fault(malformed=True), Fault(malformed=True), Fault(error_in_200=True, message="oops")
        )
        status, _, raw = await _post(emu, {"model": "gpt-5-mini", "input": "x"})
        assert status == 200 and raw == b"{not json"
        status, _, raw = await _post(emu, {"model": "gpt-5-mini", "input": "x", "stream": True})
        (sse,) = SSEDecoder().feed(raw)
        with pytest.raises(ValueError):
            json.loads(sse.data)
        status, _, raw = await _post(emu, {"model": "gpt-5-mini", "input": "x"})
        assert status == 200 and json.loads(raw)["error"]["message"] == "oops"


async def test_error_in_200_stream_ends_with_response_failed() -> None:
    async with ResponsesEmulator() as emu:
        emu.script(
            Fault(
                error_in_200=True, cut_after=5, message="overloaded", reply=Reply(text="abcdefgh")
            )
        )
        _, _, raw = await _post(emu, {"model": "gpt-5-mini", "input": "x", "stream": True})
    events = _events(raw)
    assert len(events) == 6
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed" and failed.response.error.message == "overloaded"


async def test_cut_after_drops_the_connection() -> None:
    async with ResponsesEmulator() as emu:
        emu.script(Fault(cut_after=4, reply=Reply(text="a long answer", chunk_size=2)))
        received = b""
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.ClientPayloadError):
                async with s.post(
                    emu.base_url + "/v1/responses",
                    json={"model": "gpt-5-mini", "input": "x", "stream": True},
                ) as r:
                    async for chunk in r.content.iter_any():
                        received += chunk
        assert len(SSEDecoder().feed(received)) == 4
        assert emu.completed_streams == 0


async def test_reset_and_hang() -> None:
    async with ResponsesEmulator() as emu, aiohttp.ClientSession() as s:
        emu.script(Fault(reset=True), Fault(hang=True))
        with pytest.raises(aiohttp.ClientError):
            async with s.post(
                emu.base_url + "/v1/responses", json={"model": "gpt-5-mini", "input": "x"}
            ) as r:
                await r.read()
        with pytest.raises(asyncio.TimeoutError):
            async with s.post(
                emu.base_url + "/v1/responses",
                json={"model": "gpt-5-mini", "input": "x"},
                timeout=aiohttp.ClientTimeout(total=0.3),
            ) as r:
                await r.read()


async def test_pacing_and_client_disconnect() -> None:
    async with ResponsesEmulator() as emu:
        emu.script(Reply(text="x" * 40, chunk_size=1, delay=0.02, first_delay=0.05))
        async with aiohttp.ClientSession() as s:
            loop = asyncio.get_running_loop()
            start = loop.time()
            async with s.post(
                emu.base_url + "/v1/responses",
                json={"model": "gpt-5-mini", "input": "x", "stream": True},
            ) as r:
                assert loop.time() - start >= 0.05
                await r.content.readuntil(b"\n\n")
            # leaving the block closes the connection mid-stream
        assert await emu.wait_for_disconnects(1)


async def test_emulator_output_parses_with_the_dialect() -> None:
    """Two independent readings of the wire format agree (emulator ↔ dialect parser)."""
    from relaygate.canonical import MessageStop, ToolCallDelta, ToolCallStart, UsageEvent
    from relaygate.dialects import openai_responses as d

    async with ResponsesEmulator() as emu:
        emu.script(
            Reply(
                tool_calls=[ToolCall("a", {"x": "1234567890"}), ToolCall("b", "{}")],
                input_tokens=10,
                output_tokens=5,
                cache_read_tokens=4,
            )
        )
        _, _, raw = await _post(emu, {"model": "gpt-5-mini", "input": "x", "stream": True})
    parser = d.make_parser()
    events = [e for sse in SSEDecoder().feed(raw) for e in parser.feed(sse)] + parser.finish()
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["a", "b"]
    args = "".join(
        e.arguments for e in events if isinstance(e, ToolCallDelta) and e.index == starts[0].index
    )
    assert json.loads(args) == {"x": "1234567890"}
    usage = next(e.usage for e in events if isinstance(e, UsageEvent))
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (10, 4, 5)
    assert isinstance(events[-1], MessageStop) and events[-1].stop_reason.value == "tool_use"
