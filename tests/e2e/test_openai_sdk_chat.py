"""The official ``openai`` SDK drives relaygate → the OpenAI emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from tests.conftest import RunningGateway, openai_backend, serve_gateway

from relaygate.testing import Fault, OpenAIEmulator, Reply, ToolCall

MODEL = "emu/gpt-4o-mini"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture
async def gw(openai_upstream: OpenAIEmulator) -> AsyncIterator[RunningGateway]:
    cfg = {
        "plugins": {"backends": [openai_backend(openai_upstream)]},
        "retry": {"attempts": 1},
        "server": {"auth": {"enabled": True, "api_key_env": "RG_KEY"}},
    }
    async with serve_gateway(cfg, {"RG_KEY": "rg-client-key-1"}) as running:
        yield running


@pytest.fixture
async def client(gw: RunningGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=gw.url + "/v1", api_key="rg-client-key-1", max_retries=0
    ) as c:
        yield c


async def test_create(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello sdk"}]
    )
    assert completion.choices[0].message.content == "echo: hello sdk"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


async def test_raw_response_headers(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-relaygate-backend"] == "emu"
    assert raw.headers["x-relaygate-request-id"]
    assert raw.parse().choices[0].message.content == "echo: x"


async def test_stream(client: openai.AsyncOpenAI, openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(Reply(text="streamed words arrive", chunk_size=3))
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    usage = None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "streamed words arrive"
    assert usage is not None and usage.completion_tokens > 0


async def test_stream_helper_final_completion(
    client: openai.AsyncOpenAI, openai_upstream: OpenAIEmulator
) -> None:
    openai_upstream.script(Reply(text="final answer", chunk_size=2))
    async with client.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_completion()
    assert "content.delta" in kinds and "content.done" in kinds
    assert final.choices[0].message.content == "final answer"
    assert final.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("calls", [1, 2], ids=["single", "parallel"])
async def test_tool_calls_non_stream_and_follow_up(
    client: openai.AsyncOpenAI, openai_upstream: OpenAIEmulator, calls: int
) -> None:
    cities = ["Paris", "Rome"][:calls]
    openai_upstream.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": c}, id=f"call_{c}") for c in cities]),
        Reply(text="done"),
    )
    first = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "weather?"}], tools=TOOLS
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    tool_calls = choice.message.tool_calls or []
    assert [json.loads(c.function.arguments)["city"] for c in tool_calls] == cities  # type: ignore[union-attr]
    messages: list[Any] = [
        {"role": "user", "content": "weather?"},
        choice.message.model_dump(exclude_none=True),
        *(
            {"role": "tool", "tool_call_id": c.id, "content": f"sunny in {c.id}"}
            for c in tool_calls
        ),
    ]
    second = await client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "done"
    sent = [r for r in openai_upstream.requests if r.method == "POST"][-1].json
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", *["tool"] * calls]
    assert [m["tool_call_id"] for m in sent["messages"][2:]] == [f"call_{c}" for c in cities]


@pytest.mark.parametrize("calls", [1, 2], ids=["single", "parallel"])
async def test_tool_calls_streamed(
    client: openai.AsyncOpenAI, openai_upstream: OpenAIEmulator, calls: int
) -> None:
    cities = ["Oslo", "Lima"][:calls]
    openai_upstream.script(
        Reply(tool_calls=[ToolCall("get_weather", {"city": c}, id=f"id_{c}") for c in cities])
    )
    async with client.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "weather?"}], tools=TOOLS
    ) as stream:
        done = [e async for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = await stream.get_final_completion()
    assert [json.loads(e.arguments)["city"] for e in done] == cities
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert [c.id for c in message.tool_calls or []] == [f"id_{c}" for c in cities]


async def test_errors_are_sdk_exceptions(
    gw: RunningGateway, client: openai.AsyncOpenAI, openai_upstream: OpenAIEmulator
) -> None:
    msgs: list[Any] = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.NotFoundError) as nf:
        await client.chat.completions.create(model="nope/model", messages=msgs)
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model=MODEL, messages=[])
    assert bad.value.param == "messages"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model=MODEL, messages=msgs, temperature="hot")  # type: ignore[arg-type]
    async with openai.AsyncOpenAI(
        base_url=gw.url + "/v1", api_key="wrong-key", max_retries=0
    ) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model=MODEL, messages=msgs)
    openai_upstream.script(Fault(status=500, message="kaboom"))
    with pytest.raises(openai.InternalServerError) as server:
        await client.chat.completions.create(model=MODEL, messages=msgs)
    assert server.value.status_code == 502 and "kaboom" in server.value.message
    openai_upstream.script(Fault(cut_after=2, reply=Reply(text="abcdefgh", chunk_size=1)))
    stream = await client.chat.completions.create(model=MODEL, messages=msgs, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    # Last: a 429 sets the backend's only key aside for Retry-After seconds.
    openai_upstream.script(Fault(status=429, message="slow down", retry_after=1))
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(model=MODEL, messages=msgs)
    assert "slow down" in limited.value.message
