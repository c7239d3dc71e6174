"""The Anthropic emulator speaks the real wire format: checked with aiohttp, the official SDK's
types, and the official SDK client itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import anthropic
import anthropic.types as at
import pytest
from multidict import CIMultiDict
from pydantic import TypeAdapter

from relaygate.dialects.sse import SSEDecoder, SSEEvent
from relaygate.testing._emulator import Fault, Reply, ToolCall
from relaygate.testing.anthropic_emulator import AnthropicEmulator

HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test"}
BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hello"}],
}
_EVENT = TypeAdapter(at.RawMessageStreamEvent)


async def post(
    emu: AnthropicEmulator,
    body: Any,
    *,
    path: str = "/v1/messages",
    headers: dict[str, str] | None = None,
) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            emu.base_url + path, json=body, headers=HEADERS if headers is None else headers
        ) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


def events(raw: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.flush()


def data(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for event in events(raw):
        obj = json.loads(event.data)
        assert obj["type"] == event.event  # every block names its type twice
        out.append(obj)
    return out


async def test_default_echo_validates_as_sdk_message() -> None:
    async with AnthropicEmulator() as emu:
        status, headers, raw = await post(emu, BODY)
    assert status == 200 and headers["request-id"].startswith("req_")
    message = at.Message.model_validate_json(raw)
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens >= 1
    assert emu.requests[0].headers["anthropic-version"] == "2023-06-01"


async def test_stream_event_order_ping_and_sdk_types() -> None:
    reply = Reply(
        text="Hi there",
        thinking="hmm",
        thinking_signature="EqSig",
        tool_calls=[
            ToolCall("f", {"a": 1, "path": "/tmp/x"}, id="toolu_1"),
            ToolCall("g", {"b": [1, 2, 3]}, id="toolu_2"),
        ],
        input_tokens=100,
        cache_read_tokens=60,
        cache_write_tokens=10,
        output_tokens=42,
        reasoning_tokens=5,
    )
    async with AnthropicEmulator() as emu:
        emu.script(reply)
        status, headers, raw = await post(emu, {**BODY, "stream": True})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    objs = data(raw)
    kinds = [o["type"] for o in objs]
    assert kinds[:2] == ["message_start", "ping"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    for obj in objs:
        if obj["type"] != "ping":
            _EVENT.validate_python(obj)
    start = objs[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == 30  # 100 minus cache reads and writes
    assert start["usage"]["cache_read_input_tokens"] == 60
    # Blocks strictly one after another: thinking, text, two tool_use.
    starts = [o for o in objs if o["type"] == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [
        (0, "thinking"),
        (1, "text"),
        (2, "tool_use"),
        (3, "tool_use"),
    ]
    open_index = None
    for obj in objs:
        if obj["type"] == "content_block_start":
            assert open_index is None
            open_index = obj["index"]
        elif obj["type"] == "content_block_delta":
            assert obj["index"] == open_index
        elif obj["type"] == "content_block_stop":
            assert obj["index"] == open_index
            open_index = None
    deltas = [o["delta"] for o in objs if o["type"] == "content_block_delta"]
    assert {"type": "signature_delta", "signature": "EqSig"} in deltas
    for index, expected in ((2, {"a": 1, "path": "/tmp/x"}), (3, {"b": [1, 2, 3]})):
        fragments = [
            o["delta"]["partial_json"]
            for o in objs
            if o["type"] == "content_block_delta" and o["index"] == index
        ]
        assert fragments[0] == "" and len(fragments) > 2  # streamed in pieces
        assert json.loads("".join(fragments)) == expected
    final = objs[-2]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 42
    assert final["usage"]["output_tokens_details"] == {"thinking_tokens": 5}


async def test_official_sdk_client_accumulates_the_stream() -> None:
    async with AnthropicEmulator(api_key="sk-ant-test") as emu:
        emu.script(
            Reply(text="streamed words", tool_calls=[ToolCall("f", {"x": "y"})]),
            Reply(text="plain", stop_reason="stop_sequence"),
        )
        client = anthropic.AsyncAnthropic(
            api_key="sk-ant-test", base_url=emu.base_url, max_retries=0
        )
        async with client.messages.stream(**BODY) as stream:
            message = await stream.get_final_message()
        plain = await client.messages.create(**{**BODY, "stop_sequences": ["END"]})
        await client.close()
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "streamed words"  # type: ignore[union-attr]
    assert message.content[1].input == {"x": "y"}  # type: ignore[union-attr]
    assert plain.stop_reason == "stop_sequence" and plain.stop_sequence == "END"


async def test_count_tokens_and_models() -> None:
    async with AnthropicEmulator(models=["claude-a", "claude-b"]) as emu:
        status, _, raw = await post(
            emu,
            {"model": "claude-a", "messages": BODY["messages"]},
            path="/v1/messages/count_tokens",
        )
        assert status == 200
        assert at.MessageTokensCount.model_validate_json(raw).input_tokens > 0
        async with (
            aiohttp.ClientSession() as session,
            session.get(emu.base_url + "/v1/models", headers=HEADERS) as resp,
        ):
            listing = await resp.json()
    assert listing["has_more"] is False
    assert (listing["first_id"], listing["last_id"]) == ("claude-a", "claude-b")
    for item in listing["data"]:
        at.ModelInfo.model_validate(item)


async def test_auth_and_version_headers() -> None:
    async with AnthropicEmulator(api_key="sk-ant-right") as emu:
        status, _, raw = await post(
            emu, BODY, headers={"anthropic-version": "2023-06-01", "x-api-key": "wrong"}
        )
        assert status == 401
        body = json.loads(raw)
        assert body["type"] == "error" and body["error"] == {
            "type": "authentication_error",
            "message": "invalid x-api-key",
        }
        assert body["request_id"].startswith("req_")
        status, _, _ = await post(
            emu,
            BODY,
            headers={"anthropic-version": "2023-06-01", "Authorization": "Bearer sk-ant-right"},
        )
        assert status == 200
        status, _, raw = await post(emu, BODY, headers={"x-api-key": "sk-ant-right"})
        assert status == 400 and "anthropic-version" in json.loads(raw)["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "etype"),
    [
        ({k: v for k, v in BODY.items() if k != "max_tokens"}, 400, "invalid_request_error"),
        ({**BODY, "max_tokens": "10"}, 400, "invalid_request_error"),
        ({**BODY, "model": "claude-nope"}, 404, "not_found_error"),
    ],
)
async def test_request_validation(body: dict[str, Any], status: int, etype: str) -> None:
    async with AnthropicEmulator() as emu:
        got, _, raw = await post(emu, body)
    assert got == status
    assert at.ErrorResponse.model_validate_json(raw).error.type == etype


@pytest.mark.parametrize(
    ("status", "etype"),
    [
        (429, "rate_limit_error"),
        (529, "overloaded_error"),
        (500, "api_error"),
        (413, "request_too_large"),
        (403, "permission_error"),
    ],
)
async def test_status_faults(status: int, etype: str) -> None:
    async with AnthropicEmulator() as emu:
        emu.script(Fault(status=status, message="emulated", retry_after=2))
        got, headers, raw = await post(emu, BODY)
    assert got == status and headers["retry-after"] == "2"
    assert json.loads(raw)["error"] == {"type": etype, "message": "emulated"}


async def test_custom_fault_body_and_malformed() -> None:
    async with AnthropicEmulator() as emu:
        emu.script(
            Fault(status=502, body=b"<html>bad gateway</html>"),
            Fault(malformed=True),
            Fault(malformed=True),
        )
        assert (await post(emu, BODY))[2] == b"<html>bad gateway</html>"
        status, _, raw = await post(emu, BODY)
        assert status == 200 and raw == b"{not json"
        _, _, raw = await post(emu, {**BODY, "stream": True})
    (event,) = events(raw)
    assert event.event == "message_start" and event.data == "{not json"


async def test_error_in_200() -> None:
    async with AnthropicEmulator() as emu:
        emu.script(
            Fault(error_in_200=True, message="Overloaded"),
            Fault(error_in_200=True, message="Overloaded"),
            Fault(
                error_in_200=True, message="Overloaded", cut_after=4, reply=Reply(text="abcdefgh")
            ),
        )
        status, _, raw = await post(emu, BODY)
        assert status == 200
        assert json.loads(raw) == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        status, _, raw = await post(emu, {**BODY, "stream": True})
        assert status == 200
        assert [e.event for e in events(raw)] == ["message_start", "ping", "error"]
        _, _, raw = await post(emu, {**BODY, "stream": True})
    objs = data(raw)
    assert [o["type"] for o in objs] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "error",
    ]
    at.ErrorResponse.model_validate(objs[-1])
    assert objs[-1]["error"]["type"] == "overloaded_error"


async def test_cut_after_drops_the_connection() -> None:
    async with AnthropicEmulator() as emu:
        emu.script(Fault(cut_after=3, reply=Reply(text="abcdefghijkl")))
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                emu.base_url + "/v1/messages", json={**BODY, "stream": True}, headers=HEADERS
            ) as resp,
        ):
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
    assert emu.completed_streams == 0


async def test_reset_and_hang() -> None:
    async with AnthropicEmulator() as emu:
        emu.script(Fault(reset=True), Fault(hang=True))
        with pytest.raises(aiohttp.ClientError):
            await post(emu, BODY)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(post(emu, BODY), timeout=0.3)


async def test_pacing_and_client_disconnect() -> None:
    async with AnthropicEmulator() as emu:
        emu.script(Reply(text="x" * 40, chunk_size=1, delay=0.01, first_delay=0.05))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                emu.base_url + "/v1/messages", json={**BODY, "stream": True}, headers=HEADERS
            ) as resp,
        ):
            await resp.content.readline()
            assert loop.time() - t0 >= 0.05
        assert await emu.wait_for_disconnects(1)
