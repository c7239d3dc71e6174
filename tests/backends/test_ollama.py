from __future__ import annotations

import aiohttp
import pytest
from tests.conftest import serve_gateway

from relaygate.backends.base import CallContext, HttpOptions
from relaygate.backends.ollama import OllamaBackend
from relaygate.canonical import (
    ErrorEvent,
    ErrorKind,
    GatewayError,
    Message,
    MessageStop,
    Request,
    Role,
    StopReason,
    TextDelta,
    TextPart,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    ToolSpec,
    UsageEvent,
)
from relaygate.testing import Fault, Reply, ToolCall
from relaygate.testing.ollama_emulator import OllamaEmulator


def _request(text: str = "hi", **kw: object) -> Request:
    return Request(
        model="ollama/llama3.2:3b", messages=[Message(Role.USER, [TextPart(text)])], **kw
    )  # type: ignore[arg-type]


def _ctx() -> CallContext:
    return CallContext(request_id="req-1", loop_guard="guard-1")


@pytest.fixture
async def upstream() -> object:
    async with OllamaEmulator() as emu:
        yield emu


async def test_complete_builds_native_body_and_maps_usage(upstream: OllamaEmulator) -> None:
    backend = OllamaBackend("ollama", HttpOptions(base_url=upstream.base_url + "/v1"))
    upstream.script(Reply(text="bonjour", input_tokens=11, output_tokens=3))
    req = _request(max_tokens=20, temperature=0.2, stop=["END"])
    req.system = [TextPart("be brief")]
    response = await backend.complete(req, "llama3.2:3b", _ctx())
    await backend.aclose()
    assert response.text() == "bonjour"
    assert response.usage.input_tokens == 11 and response.usage.output_tokens == 3
    sent = upstream.requests[-1]
    assert sent.path == "/api/chat"  # the /v1 shim suffix was dropped
    assert sent.json["stream"] is False
    assert sent.json["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent.json["options"] == {"temperature": 0.2, "num_predict": 20, "stop": ["END"]}
    assert "authorization" not in sent.headers
    assert sent.headers["x-relaygate-loop-guard"] == "guard-1"


async def test_stream_ndjson_to_events(upstream: OllamaEmulator) -> None:
    backend = OllamaBackend("ollama", HttpOptions(base_url=upstream.base_url))
    upstream.script(Reply(text="hello world", chunk_size=3, input_tokens=5, output_tokens=2))
    events = [e async for e in backend.stream(_request(), "llama3.2:3b", _ctx())]
    await backend.aclose()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hello world"
    usage = next(e for e in events if isinstance(e, UsageEvent)).usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 2)
    assert isinstance(events[-1], MessageStop) and events[-1].stop_reason is StopReason.END_TURN
    assert upstream.requests[-1].json["stream"] is True


async def test_tool_calls_round_trip(upstream: OllamaEmulator) -> None:
    backend = OllamaBackend("ollama", HttpOptions(base_url=upstream.base_url))
    upstream.script(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
    req = _request(tools=[ToolSpec("get_weather", "weather", {"type": "object"})])
    events = [e async for e in backend.stream(req, "llama3.2:3b", _ctx())]
    start = next(e for e in events if isinstance(e, ToolCallStart))
    assert start.name == "get_weather"
    assert isinstance(events[-1], MessageStop) and events[-1].stop_reason is StopReason.TOOL_USE
    # the tool result goes back with the tool's name and arguments as an object
    req.messages += [
        Message(Role.ASSISTANT, [ToolCallPart("call_0", "get_weather", '{"city":"Paris"}')]),
        Message(Role.TOOL, [ToolResultPart("call_0", [TextPart("sunny")])]),
    ]
    await backend.complete(req, "llama3.2:3b", _ctx())
    await backend.aclose()
    sent = upstream.requests[-1].json
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["messages"][-2]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert sent["messages"][-1] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


async def test_bearer_auth_for_ollama_cloud() -> None:
    async with OllamaEmulator(api_key="ollama-key-abcdef") as emu:
        backend = OllamaBackend(
            "ollama", HttpOptions(base_url=emu.base_url, api_key="ollama-key-abcdef")
        )
        assert [m.id for m in await backend.list_models()] == [
            "ollama/llama3.2:3b",
            "ollama/qwen2.5:0.5b",
        ]
        await backend.complete(_request(), "llama3.2:3b", _ctx())
        assert emu.requests[-1].headers["authorization"] == "Bearer ollama-key-abcdef"
        bad = OllamaBackend("ollama", HttpOptions(base_url=emu.base_url, api_key="wrong-key-000"))
        with pytest.raises(GatewayError) as info:
            await bad.complete(_request(), "llama3.2:3b", _ctx())
        assert info.value.kind is ErrorKind.AUTHENTICATION and info.value.status == 502
        assert "wrong-key-000" not in info.value.message
        await backend.aclose()
        await bad.aclose()


async def test_error_mapping(upstream: OllamaEmulator) -> None:
    backend = OllamaBackend("ollama", HttpOptions(base_url=upstream.base_url))
    with pytest.raises(GatewayError) as info:
        await backend.complete(_request(), "nope:1b", _ctx())
    assert info.value.kind is ErrorKind.NOT_FOUND and info.value.status == 404
    assert "not found" in info.value.message and info.value.backend == "ollama"
    upstream.script(Fault(status=503, message="server busy"))
    with pytest.raises(GatewayError) as info:
        await backend.complete(_request(), "llama3.2:3b", _ctx())
    assert info.value.kind is ErrorKind.UNAVAILABLE
    upstream.script(Fault(malformed=True))
    with pytest.raises(GatewayError) as info:
        await backend.complete(_request(), "llama3.2:3b", _ctx())
    assert info.value.kind is ErrorKind.UPSTREAM
    # a failure after streaming started arrives as an {"error": ...} line
    upstream.script(
        Fault(cut_after=2, message="model runner crashed", reply=Reply(text="abcdefghijkl"))
    )
    events = [e async for e in backend.stream(_request(), "llama3.2:3b", _ctx())]
    await backend.aclose()
    assert isinstance(events[-1], ErrorEvent)
    assert "model runner crashed" in events[-1].error.message


async def test_discovery_failure_is_reported() -> None:
    backend = OllamaBackend("ollama", HttpOptions(base_url="http://127.0.0.1:9"))
    with pytest.raises(GatewayError) as info:
        await backend.list_models()
    assert info.value.kind is ErrorKind.UNAVAILABLE
    await backend.aclose()


async def test_through_the_gateway_openai_client(upstream: OllamaEmulator) -> None:
    config = {
        "plugins": {
            "backends": [
                {"id": "ollama", "kind": "ollama", "config": {"base_url": upstream.base_url}}
            ]
        }
    }
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.url + "/v1/models") as r:
            ids = [m["id"] for m in (await r.json())["data"]]
            assert "ollama/llama3.2:3b" in ids
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={
                "model": "ollama/llama3.2:3b",
                "stream": True,
                "messages": [{"role": "user", "content": "yo"}],
            },
        ) as r:
            text = await r.text()
            assert r.status == 200 and r.headers["x-relaygate-backend"] == "ollama"
            assert "echo" in text and text.rstrip().endswith("data: [DONE]")
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={"model": "ollama/missing:1b", "messages": [{"role": "user", "content": "yo"}]},
        ) as r:
            body = await r.json()
            assert r.status == 404 and "not found" in body["error"]["message"]
