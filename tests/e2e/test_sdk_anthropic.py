"""The official ``anthropic`` SDK against relaygate, routed to backends of every other dialect."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from tests.conftest import RunningGateway, serve_gateway
from tests.e2e.upstreams import MODELS, Upstreams, upstreams

from relaygate.testing import Reply, ToolCall

OTHERS = ["oai", "rsp", "gem"]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def env() -> AsyncIterator[tuple[Upstreams, RunningGateway, anthropic.AsyncAnthropic]]:
    async with upstreams() as up, serve_gateway(up.config()) as gw:
        client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="client-key", max_retries=0)
        yield up, gw, client
        await client.close()


def _tool_result_upstream(prefix: str, body: dict[str, Any], call_id: str) -> str:
    """The tool result as it reached the upstream, in that upstream's own shape."""
    if prefix == "oai":
        tool = next(m for m in body["messages"] if m["role"] == "tool")
        assert tool["tool_call_id"] == call_id
        return str(tool["content"])
    if prefix == "rsp":
        out = next(i for i in body["input"] if i.get("type") == "function_call_output")
        assert out["call_id"] == call_id
        return str(out["output"])
    parts = [p for c in body["contents"] for p in c["parts"] if "functionResponse" in p]
    response = parts[0]["functionResponse"]
    assert response["name"] == "get_weather"
    return json.dumps(response["response"])


@pytest.mark.parametrize("prefix", OTHERS)
async def test_messages_create(env: Any, prefix: str) -> None:
    up, _gw, client = env
    up.by_prefix(prefix).script(Reply(text="Bonjour!", input_tokens=12, output_tokens=3))
    message = await client.messages.create(
        model=MODELS[prefix][1],
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Say hello in French"}],
    )
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour!"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    sent = up.by_prefix(prefix).requests[-1].json
    assert "Be brief." in json.dumps(sent)  # the system prompt crossed over
    assert "Say hello in French" in json.dumps(sent)


@pytest.mark.parametrize("prefix", OTHERS)
async def test_stream_final_message(env: Any, prefix: str) -> None:
    up, _gw, client = env
    up.by_prefix(prefix).script(Reply(text="one two three four five", chunk_size=3))
    async with client.messages.stream(
        model=MODELS[prefix][1], max_tokens=64, messages=[{"role": "user", "content": "count"}]
    ) as stream:
        texts = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == "one two three four five"
    assert len(texts) > 1  # really streamed, not one blob
    assert final.content[0].type == "text" and final.content[0].text == "one two three four five"
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("prefix", OTHERS)
async def test_tool_use_and_tool_result_turn(env: Any, prefix: str) -> None:
    up, _gw, client = env
    emulator = up.by_prefix(prefix)
    emulator.script(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_w1")]))
    first = await client.messages.create(
        model=MODELS[prefix][1],
        max_tokens=200,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    emulator.script(Reply(text="It is sunny in Paris."))
    second = await client.messages.create(
        model=MODELS[prefix][1],
        max_tokens=200,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24C"}
                ],
            },
        ],
    )
    assert second.content[0].type == "text" and second.content[0].text == "It is sunny in Paris."
    assert "sunny, 24C" in _tool_result_upstream(prefix, emulator.requests[-1].json, use.id)


@pytest.mark.parametrize("prefix", OTHERS)
async def test_parallel_tool_use_streamed(env: Any, prefix: str) -> None:
    up, _gw, client = env
    up.by_prefix(prefix).script(
        Reply(
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_a"),
                ToolCall("get_weather", {"city": "Tokyo", "unit": "celsius"}, id="call_b"),
            ],
            chunk_size=5,
        )
    )
    partial: list[str] = []
    async with client.messages.stream(
        model=MODELS[prefix][1],
        max_tokens=200,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial.append(event.delta.partial_json)
        final = await stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [
        {"city": "Paris", "unit": "celsius"},
        {"city": "Tokyo", "unit": "celsius"},
    ]
    assert len({u.id for u in uses}) == 2
    assert "".join(partial)  # arguments arrived as input_json_delta, never dropped
    assert final.stop_reason == "tool_use"


async def test_bearer_auth_and_new_version_header_accepted(env: Any) -> None:
    _up, gw, _client = env
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/v1/messages?beta=true",
            headers={"Authorization": "Bearer k", "anthropic-version": "2026-10-21"},
            json={
                "model": "gem/gemini-2.5-flash",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as r,
    ):
        assert r.status == 200, await r.text()
