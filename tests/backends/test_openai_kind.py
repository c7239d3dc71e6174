"""The ``openai`` and ``custom-openai-legacy-compatible`` kinds over a MockTransport (no network)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from relaygate.backends.base import CallContext, HttpOptions
from relaygate.backends.registry import BuildContext, load_registry
from relaygate.backends.transport import MockReply, MockTransport
from relaygate.canonical import (
    ErrorKind,
    GatewayError,
    Message,
    Request,
    Role,
    TextDelta,
    TextPart,
    ToolCallStart,
)
from relaygate.hooks import make_plugin_manager

CTX = CallContext("req-1", loop_guard="guard-1")
Handler = Any


def build(kind: str, handler: Handler, env: Mapping[str, str] | None = None, **config: Any) -> Any:
    registry = load_registry(make_plugin_manager())
    entry = registry.get(kind)
    assert entry is not None
    options = entry.options.model_validate(config)
    transport = MockTransport(handler)
    backend = entry.factory("b1", options, BuildContext(env=dict(env or {}), transport=transport))
    return backend, transport


def completion(text: str = "ok") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()


def request(**extra: Any) -> Request:
    return Request(model="x", messages=[Message(Role.USER, [TextPart("hi")])], **extra)


def test_kinds_registered_through_the_hook() -> None:
    registry = load_registry(make_plugin_manager())
    assert {"openai", "custom-openai-legacy-compatible"} <= set(registry.kinds)
    assert "openai" in registry.reserved_prefixes()
    assert "custom-openai-legacy-compatible" not in registry.reserved_prefixes()
    custom = registry.get("custom-openai-legacy-compatible")
    assert custom is not None and custom.requires_base_url and custom.custom_prefix
    openai = registry.get("openai")
    assert openai is not None and openai.env_key == "OPENAI_API_KEY"


async def test_openai_defaults_and_max_completion_tokens() -> None:
    backend, transport = build(
        "openai", lambda *_: MockReply(200, completion()), api_key="sk-openai-00001"
    )
    response = await backend.complete(request(max_tokens=50), "gpt-4o", CTX)
    assert response.text() == "ok"
    (method, url, headers, body) = transport.calls[0]
    assert (method, url) == ("POST", "https://api.openai.com/v1/chat/completions")
    assert headers["Authorization"] == "Bearer sk-openai-00001"
    assert headers["x-relaygate-loop-guard"] == "guard-1"
    assert headers["x-request-id"] == "req-1"
    sent = json.loads(body or b"")
    assert sent["model"] == "gpt-4o" and sent["max_completion_tokens"] == 50
    assert "max_tokens" not in sent


async def test_custom_kind_uses_base_url_and_max_tokens() -> None:
    backend, transport = build(
        "custom-openai-legacy-compatible",
        lambda *_: MockReply(200, completion()),
        backend_prefix="p",
        base_url="https://llm.example.com/v1/",
        api_key="sk-custom-0001",
        headers={"X-Extra": "1"},
    )
    assert backend.prefix == "p"
    await backend.complete(request(max_tokens=7), "native", CTX)
    _, url, headers, body = transport.calls[0]
    assert url == "https://llm.example.com/v1/chat/completions"
    assert headers["X-Extra"] == "1"
    assert json.loads(body or b"")["max_tokens"] == 7


async def test_forward_sends_the_body_as_given() -> None:
    backend, transport = build(
        "custom-openai-legacy-compatible",
        lambda *_: MockReply(200, completion("fwd")),
        base_url="http://u/v1",
        backend_prefix="p",
    )
    body = {"model": "n", "messages": [], "x_unknown": {"a": [1, 2]}}
    reply = await backend.forward(body, stream=False, ctx=CTX)
    assert (
        reply.status == 200 and json.loads(reply.body)["choices"][0]["message"]["content"] == "fwd"
    )
    assert json.loads(transport.calls[0][3] or b"") == body
    assert "Authorization" not in transport.calls[0][2]  # no key configured, none sent


async def test_stream_parses_sse_from_chunks_cut_anywhere() -> None:
    wire = (
        b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"He"}}]}\n\n'
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"llo"}}]}\n\n'
        b'data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","function":{"name":"f","arguments":"{}"}}]}}]}\n\n'
        b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    pieces = [wire[i : i + 13] for i in range(0, len(wire), 13)]
    backend, transport = build(
        "custom-openai-legacy-compatible",
        lambda *_: MockReply(200, pieces),
        base_url="http://u/v1",
        backend_prefix="p",
        api_key="sk-abcdefgh",
    )
    events = [e async for e in backend.stream(request(), "n", CTX)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello"
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["f"]
    assert events[-1].kind == "message_stop"
    sent = json.loads(transport.calls[0][3] or b"")
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert transport.calls[0][2]["Accept"] == "text/event-stream"


async def test_upstream_error_keeps_message_and_redacts_key() -> None:
    key = "sk-leaky-key-7777777"
    body = json.dumps(
        {
            "error": {
                "message": f"Incorrect API key provided: {key}",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    ).encode()
    backend, _ = build(
        "custom-openai-legacy-compatible",
        lambda *_: MockReply(401, body),
        base_url="http://u/v1",
        backend_prefix="p",
        api_key=key,
    )
    with pytest.raises(GatewayError) as info:
        await backend.complete(request(), "n", CTX)
    err = info.value
    assert err.kind is ErrorKind.AUTHENTICATION and err.status == 502 and err.upstream_status == 401
    assert "Incorrect API key provided" in err.message and key not in err.message
    assert err.backend == "b1"


async def test_keys_from_env_root_rotate_on_429() -> None:
    env = {"ROOT": "sk-root-one-0001", "ROOT_2": "sk-root-two-0002", "ROOT_4": "sk-ignored-0004"}
    used: list[str] = []

    def handler(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> MockReply:
        used.append(headers["Authorization"])
        if len(used) == 1:
            return MockReply(429, b'{"error":{"message":"slow"}}', {"retry-after": "30"})
        return MockReply(200, completion())

    backend, _ = build(
        "custom-openai-legacy-compatible",
        handler,
        env=env,
        base_url="http://u/v1",
        backend_prefix="p",
        api_key_env_var_root="ROOT",
    )
    assert len(backend.keys) == 2
    with pytest.raises(GatewayError) as info:
        await backend.complete(request(), "n", CTX)
    assert info.value.kind is ErrorKind.RATE_LIMIT and info.value.retry_after == 30
    await backend.complete(request(), "n", CTX)
    assert used == ["Bearer sk-root-one-0001", "Bearer sk-root-two-0002"]


def test_key_precedence() -> None:
    env = {"R": "from-env"}
    assert HttpOptions(api_key_env_var_root="R").resolve_keys(env) == ["from-env"]
    assert HttpOptions(api_key="k1", api_key_env_var_root="R").resolve_keys(env) == ["k1"]
    assert HttpOptions(api_key="k1", api_keys=["k2", "k3"]).resolve_keys(env) == ["k2", "k3"]
    assert HttpOptions(api_keys=["k2"], credentials={"api_key": "c1"}).resolve_keys(env) == ["c1"]
    assert HttpOptions(credentials=["c1", "c2"]).resolve_keys(env) == ["c1", "c2"]


async def test_discovery_and_inline_inventory() -> None:
    listing = json.dumps(
        {"object": "list", "data": [{"id": "m1", "object": "model"}, {"id": "m2"}, {"x": 1}]}
    ).encode()
    backend, transport = build(
        "custom-openai-legacy-compatible",
        lambda *_: MockReply(200, listing),
        base_url="http://u/v1",
        backend_prefix="pp",
        api_key="sk-disc-000001",
    )
    models = await backend.list_models()
    assert [(m.id, m.native_id, m.backend) for m in models] == [
        ("pp/m1", "m1", "b1"),
        ("pp/m2", "m2", "b1"),
    ]
    assert transport.calls[0][:2] == ("GET", "http://u/v1/models")
    assert transport.calls[0][2]["Authorization"] == "Bearer sk-disc-000001"
    await backend.list_models()
    assert len(transport.calls) == 1  # cached

    static, transport = build(
        "custom-openai-legacy-compatible",
        lambda *_: MockReply(500, b""),
        base_url="http://u/v1",
        backend_prefix="pp",
        models={"items": [{"native_id": "a", "canonical_id": "pp/alpha", "display_name": "A"}]},
    )
    (model,) = await static.list_models()
    assert (model.id, model.native_id, model.display_name) == ("pp/alpha", "a", "A")
    assert transport.calls == []


async def test_discovery_failure_raises_gateway_error() -> None:
    backend, _ = build(
        "custom-openai-legacy-compatible",
        lambda *_: MockReply(503, b'{"error":{"message":"maintenance"}}'),
        base_url="http://u/v1",
        backend_prefix="pp",
    )
    with pytest.raises(GatewayError) as info:
        await backend.list_models()
    assert info.value.message == "maintenance"
