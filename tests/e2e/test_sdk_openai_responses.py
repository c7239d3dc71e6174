"""The official ``openai`` SDK's Responses API against relaygate, routed to backends of every
other dialect (Chat Completions, Anthropic, Gemini)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from tests.conftest import RunningGateway, serve_gateway
from tests.e2e.upstreams import MODELS, Upstreams, upstreams

from relaygate.testing import Reply, ToolCall

OTHERS = ["oai", "ant", "gem"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture
async def env() -> AsyncIterator[tuple[Upstreams, RunningGateway, openai.AsyncOpenAI]]:
    async with upstreams() as up, serve_gateway(up.config()) as gw:
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="client-key", max_retries=0)
        yield up, gw, client
        await client.close()


@pytest.mark.parametrize("prefix", OTHERS)
async def test_responses_create(env: Any, prefix: str) -> None:
    up, _gw, client = env
    up.by_prefix(prefix).script(Reply(text="Hi there.", input_tokens=10, output_tokens=3))
    response = await client.responses.create(
        model=MODELS[prefix][1], instructions="Be terse.", input="Greet me", max_output_tokens=50
    )
    assert response.output_text == "Hi there."
    assert response.status == "completed"
    assert response.usage is not None and response.usage.output_tokens == 3
    sent = json.dumps(up.by_prefix(prefix).requests[-1].json)
    assert "Be terse." in sent and "Greet me" in sent


@pytest.mark.parametrize("prefix", OTHERS)
async def test_responses_stream(env: Any, prefix: str) -> None:
    up, _gw, client = env
    up.by_prefix(prefix).script(Reply(text="streaming works fine", chunk_size=4))
    deltas: list[str] = []
    async with client.responses.stream(model=MODELS[prefix][1], input="go") as stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = await stream.get_final_response()
    assert "".join(deltas) == "streaming works fine" and len(deltas) > 1
    assert final.output_text == "streaming works fine"
    assert final.status == "completed"


@pytest.mark.parametrize("prefix", OTHERS)
@pytest.mark.parametrize("stream", [False, True])
async def test_function_calls_and_outputs(env: Any, prefix: str, stream: bool) -> None:
    up, _gw, client = env
    emulator = up.by_prefix(prefix)
    emulator.script(
        Reply(
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}, id="call_p"),
                ToolCall("get_weather", {"city": "Oslo"}, id="call_o"),
            ]
        )
    )
    args = {"model": MODELS[prefix][1], "tools": [WEATHER], "input": "Weather in Paris and Oslo?"}
    if stream:
        async with client.responses.stream(**args) as s:
            arg_deltas = [
                e.delta async for e in s if e.type == "response.function_call_arguments.delta"
            ]
            first = await s.get_final_response()
        assert "".join(arg_deltas)
    else:
        first = await client.responses.create(**args)
    calls = [i for i in first.output if i.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    emulator.script(Reply(text="Paris sunny, Oslo rainy."))
    follow = await client.responses.create(
        model=MODELS[prefix][1],
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            *[c.model_dump(exclude_none=True) for c in calls],
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
            {"type": "function_call_output", "call_id": calls[1].call_id, "output": "rainy"},
        ],
    )
    assert follow.output_text == "Paris sunny, Oslo rainy."
    sent = json.dumps(emulator.requests[-1].json)
    assert "sunny" in sent and "rainy" in sent


async def test_previous_response_id_across_dialects(env: Any) -> None:
    up, _gw, client = env
    up.ant.script(Reply(text="My name is Claude."))
    first = await client.responses.create(model="ant/claude-sonnet-4-5", input="What is your name?")
    up.gem.script(Reply(text="You asked my name."))
    second = await client.responses.create(
        model="gem/gemini-2.5-flash", previous_response_id=first.id, input="What did I ask?"
    )
    assert second.output_text == "You asked my name."
    contents = up.gem.requests[-1].json["contents"]
    texts = [p.get("text") for c in contents for p in c["parts"]]
    assert texts == ["What is your name?", "My name is Claude.", "What did I ask?"]
    got = await client.responses.retrieve(second.id)
    assert got.output_text == "You asked my name."
