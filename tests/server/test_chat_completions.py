"""``POST /v1/chat/completions`` end to end: relaygate on loopback → the OpenAI emulator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from tests.conftest import openai_backend, serve_gateway

from relaygate.testing import Fault, OpenAIEmulator, Recorded, Reply, ToolCall

KEY = "sk-test-key-123456"


def config(upstream: OpenAIEmulator, **extra: Any) -> dict[str, Any]:
    return {
        "plugins": {"backends": [openai_backend(upstream)]},
        "retry": {"attempts": 1},
        **extra,
    }


async def post(
    url: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + "/v1/chat/completions",
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as r,
    ):
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


def sse_data(raw: bytes) -> list[Any]:
    out: list[Any] = []
    for block in raw.decode().split("\n\n"):
        if block.startswith("data: "):
            data = block[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def posts(upstream: OpenAIEmulator) -> list[Recorded]:
    """What reached the chat endpoint (discovery's GET /models aside)."""
    return [r for r in upstream.requests if r.method == "POST"]


def chat(model: str = "emu/gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def assert_openai_error(raw: bytes) -> dict[str, Any]:
    body = json.loads(raw)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    err: dict[str, Any] = body["error"]
    return err


# ----------------------------------------------------------------------------- happy paths


async def test_non_stream_headers_and_model_rewrite(openai_upstream: OpenAIEmulator) -> None:
    async with serve_gateway(config(openai_upstream)) as gw:
        status, headers, raw = await post(gw.url, chat(), {"X-Request-ID": "req-abc.1"})
    assert status == 200, raw
    body = json.loads(raw)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "echo: hi"
    assert body["usage"]["total_tokens"] > 0
    assert headers["x-relaygate-request-id"] == "req-abc.1"
    assert headers["x-relaygate-backend"] == "emu"
    assert headers["x-relaygate-attempts"] == "1"
    (sent,) = posts(openai_upstream)
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-request-id"] == "req-abc.1"
    assert "x-relaygate-loop-guard" in sent.headers


async def test_colon_selector_and_generated_request_id(openai_upstream: OpenAIEmulator) -> None:
    async with serve_gateway(config(openai_upstream)) as gw:
        status, headers, _ = await post(gw.url, chat("emu:gpt-4.1"))
    assert status == 200
    assert len(headers["x-relaygate-request-id"]) == 32
    assert posts(openai_upstream)[0].json["model"] == "gpt-4.1"


async def test_stream_text(openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(Reply(text="Hello streaming world", chunk_size=5))
    async with serve_gateway(config(openai_upstream)) as gw:
        status, headers, raw = await post(gw.url, chat(stream=True))
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-relaygate-backend"] == "emu"
    events = sse_data(raw)
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "Hello streaming world"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


async def test_usage_chunk_stripped_unless_asked(openai_upstream: OpenAIEmulator) -> None:
    async with serve_gateway(config(openai_upstream)) as gw:
        _, _, raw = await post(gw.url, chat(stream=True))
        # relaygate asked for usage (the ledger needs it) but the client did not get it.
        assert posts(openai_upstream)[-1].json["stream_options"] == {"include_usage": True}
        assert all(e == "[DONE]" or e["choices"] for e in sse_data(raw))
        assert b'"usage"' not in raw.replace(b'"usage":null', b"")
        _, _, raw = await post(gw.url, chat(stream=True, stream_options={"include_usage": True}))
    events = sse_data(raw)
    usage = [e for e in events[:-1] if not e["choices"]]
    assert len(usage) == 1 and usage[0]["usage"]["total_tokens"] > 0


async def test_tools_non_stream_and_follow_up(openai_upstream: OpenAIEmulator) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    openai_upstream.script(
        Reply(
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}, id="call_p"),
                ToolCall("get_weather", {"city": "Rome"}, id="call_r"),
            ]
        ),
        Reply(text="Paris 18C, Rome 25C"),
    )
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, chat(tools=tools, tool_choice="auto"))
        assert status == 200
        message = json.loads(raw)["choices"][0]["message"]
        assert json.loads(raw)["choices"][0]["finish_reason"] == "tool_calls"
        assert [c["id"] for c in message["tool_calls"]] == ["call_p", "call_r"]
        follow = chat(tools=tools)
        follow["messages"] += [
            {"role": "assistant", "content": None, "tool_calls": message["tool_calls"]},
            {"role": "tool", "tool_call_id": "call_p", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_r", "content": "25C"},
        ]
        status, _, raw = await post(gw.url, follow)
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "Paris 18C, Rome 25C"
    assert posts(openai_upstream)[0].json["tools"] == tools
    assert posts(openai_upstream)[1].json["messages"][1:] == follow["messages"][1:]


async def test_stream_parallel_tool_calls(openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(
        Reply(tool_calls=[ToolCall("f", {"a": 1}, id="c1"), ToolCall("g", {"b": "xyz"}, id="c2")])
    )
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, chat(stream=True))
    assert status == 200
    calls: dict[int, dict[str, str]] = {}
    for event in sse_data(raw)[:-1]:
        for delta in event["choices"][0]["delta"].get("tool_calls") or []:
            slot = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            slot["id"] += delta.get("id", "")
            slot["name"] += delta.get("function", {}).get("name", "")
            slot["arguments"] += delta.get("function", {}).get("arguments", "")
    assert calls == {
        0: {"id": "c1", "name": "f", "arguments": '{"a":1}'},
        1: {"id": "c2", "name": "g", "arguments": '{"b":"xyz"}'},
    }


async def test_images_reach_upstream(openai_upstream: OpenAIEmulator) -> None:
    content = [
        {"type": "text", "text": "what is this"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
        },
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
    ]
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(
            gw.url, {"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
        )
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "echo: what is this"
    assert posts(openai_upstream)[0].json["messages"][0]["content"] == content


# ----------------------------------------------------------------------------- fast path


async def test_unknown_fields_survive_both_ways(openai_upstream: OpenAIEmulator) -> None:
    body = chat(
        x_never_heard_of={"deep": [1, 2.5, None, "é"], "flag": True},
        logit_bias={"50256": -100},
        prediction={"type": "content", "content": "abc"},
    )
    upstream_body = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hey", "x_msg_extra": 1},
                "finish_reason": "stop",
                "x_choice_extra": "kept",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "x_provider_field": {"citations": ["a", "b"]},
    }
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "hi", "x_delta_extra": [1]},
                    "finish_reason": None,
                }
            ],
            "x_chunk_extra": "yes",
        },
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        },
    ]
    stream_raw = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    stream_raw += b": a comment the relay keeps\n\ndata: [DONE]\n\n"
    openai_upstream.script(
        Fault(status=200, body=json.dumps(upstream_body).encode()),
        Fault(status=200, body=stream_raw),
    )
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, body)
        assert status == 200
        assert json.loads(raw) == upstream_body  # byte relay: nothing dropped or renamed
        sent = posts(openai_upstream)[0].json
        assert sent == {**body, "model": "gpt-4o-mini"}
        status, _, raw = await post(
            gw.url, {**body, "stream": True, "stream_options": {"include_usage": True}}
        )
    assert status == 200
    assert raw == stream_raw


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("data", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model"),
        (json.dumps({"model": "emu/gpt-4o-mini"}).encode(), "messages"),
        (json.dumps({"model": 12, "messages": []}).encode(), "model"),
        (json.dumps(chat(temperature="warm")).encode(), "temperature"),
        (json.dumps(chat(max_tokens="10")).encode(), "max_tokens"),
        (json.dumps(chat(stream="true")).encode(), "stream"),
        (
            json.dumps({"model": "emu/gpt-4o-mini", "messages": [{"role": "bot"}]}).encode(),
            "messages[0].role",
        ),
    ],
)
async def test_bad_input_is_400_in_openai_shape(
    openai_upstream: OpenAIEmulator, data: bytes, param: str | None
) -> None:
    async with serve_gateway(config(openai_upstream)) as gw:
        status, headers, raw = await post(gw.url, data)
    assert status == 400, raw
    err = assert_openai_error(raw)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert "x-relaygate-request-id" in headers
    assert posts(openai_upstream) == []


async def test_unknown_model_is_404(openai_upstream: OpenAIEmulator) -> None:
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, chat("nosuch/model"))
        status2, _, raw2 = await post(gw.url, chat("bare-unknown-model"))
    assert status == 404 and status2 == 404
    err = assert_openai_error(raw)
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert "emu" in err["message"]  # says which prefixes exist
    assert assert_openai_error(raw2)["code"] == "model_not_found"


async def test_body_over_limit_is_413(openai_upstream: OpenAIEmulator) -> None:
    cfg = config(openai_upstream, server={"max_body_bytes": 2048})
    async with serve_gateway(cfg) as gw:
        big = chat()
        big["messages"][0]["content"] = "x" * 5000
        status, _, raw = await post(gw.url, big)
        ok_status, _, _ = await post(gw.url, chat())
    assert status == 413
    err = assert_openai_error(raw)
    assert "max_body_bytes" in err["message"]
    assert ok_status == 200


async def test_auth(openai_upstream: OpenAIEmulator) -> None:
    cfg = config(openai_upstream, server={"auth": {"enabled": True, "api_key_env": "RG_MASTER"}})
    env = {"RG_MASTER": "master-secret-1"}
    async with serve_gateway(cfg, env) as gw:
        missing, _, raw_missing = await post(gw.url, chat())
        wrong, _, raw_wrong = await post(gw.url, chat(), {"Authorization": "Bearer nope-nope"})
        ok, _, _ = await post(gw.url, chat(), {"Authorization": "Bearer master-secret-1"})
        ok2, _, _ = await post(gw.url, chat(), {"x-api-key": "master-secret-1"})
        async with aiohttp.ClientSession() as http:
            async with http.get(gw.url + "/health") as r:
                assert r.status == 200  # public path
            async with http.get(gw.url + "/v1/models") as r:
                assert r.status == 401
                assert_openai_error(await r.read())
    assert (missing, wrong, ok, ok2) == (401, 401, 200, 200)
    for raw in (raw_missing, raw_wrong):
        err = assert_openai_error(raw)
        assert err["type"] == "authentication_error"
        assert b"master-secret-1" not in raw
    assert len(posts(openai_upstream)) == 2


async def test_own_loop_guard_is_refused(openai_upstream: OpenAIEmulator) -> None:
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, chat(), {"x-relaygate-loop-guard": gw.app.loop_guard})
    assert status == 508
    assert_openai_error(raw)


# ----------------------------------------------------------------------------- upstream failures


@pytest.mark.parametrize(
    ("upstream_status", "client_status"),
    [(500, 502), (502, 502), (503, 503), (504, 504), (401, 502), (429, 429), (400, 400)],
)
async def test_upstream_errors_keep_message(
    openai_upstream: OpenAIEmulator, upstream_status: int, client_status: int
) -> None:
    openai_upstream.script(
        Fault(status=upstream_status, message=f"upstream says {upstream_status}")
    )
    async with serve_gateway(config(openai_upstream)) as gw:
        status, headers, raw = await post(gw.url, chat())
    assert status == client_status
    err = assert_openai_error(raw)
    assert f"upstream says {upstream_status}" in err["message"]
    assert headers["x-relaygate-backend"] == "emu"


async def test_upstream_error_message_is_redacted(openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(
        Fault(status=401, message=f"Incorrect API key provided: {KEY}. Bearer {KEY}")
    )
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, chat())
    assert status == 502
    assert KEY.encode() not in raw
    assert "Incorrect API key provided" in assert_openai_error(raw)["message"]


async def test_retry_then_success_counts_attempts(openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(Fault(status=503, message="busy"), Reply(text="second time"))
    cfg = config(openai_upstream)
    cfg["retry"] = {"attempts": 2, "backoff_base": 0.0}
    async with serve_gateway(cfg) as gw:
        status, headers, raw = await post(gw.url, chat())
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "second time"
    assert headers["x-relaygate-attempts"] == "2"


async def test_timeout_is_504(openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(Fault(hang=True), Fault(hang=True))
    cfg = config(openai_upstream, timeouts={"connect": 1, "first_token": 0.2, "total": 1})
    async with serve_gateway(cfg) as gw:
        status, _, raw = await post(gw.url, chat())
        s_status, _, s_raw = await post(gw.url, chat(stream=True))
    assert status == 504 and s_status == 504
    assert assert_openai_error(raw)["type"] == "timeout"
    assert_openai_error(s_raw)


async def test_unreachable_upstream_is_503() -> None:
    backend = openai_backend(OpenAIEmulator(), "down", models={"items": [{"native_id": "m"}]})
    backend["config"]["base_url"] = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    async with serve_gateway({"plugins": {"backends": [backend]}, "retry": {"attempts": 1}}) as gw:
        status, _, raw = await post(gw.url, chat("down/m"))
    assert status == 503
    assert "cannot connect" in assert_openai_error(raw)["message"]


async def test_malformed_upstream_body_is_502(openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(
        Fault(malformed=True), Fault(error_in_200=True, message="hidden failure")
    )
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, chat())
        status2, _, raw2 = await post(gw.url, chat())
    assert status == 502
    assert_openai_error(raw)
    assert status2 == 502
    assert "hidden failure" in assert_openai_error(raw2)["message"]


async def test_stream_cut_midway_ends_with_error_event(openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(Fault(cut_after=3, reply=Reply(text="a long answer here", chunk_size=2)))
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, chat(stream=True))
    assert status == 200  # the first byte had gone out: the error travels inside the stream
    events = sse_data(raw)
    assert events[-1] == "[DONE]"
    assert "error" in events[-2]
    assert set(events[-2]["error"]) == {"message", "type", "param", "code"}


async def test_stream_error_before_first_byte_is_http_error(
    openai_upstream: OpenAIEmulator,
) -> None:
    openai_upstream.script(Fault(malformed=True))
    async with serve_gateway(config(openai_upstream)) as gw:
        status, _, raw = await post(gw.url, chat(stream=True))
    assert status == 502
    assert_openai_error(raw)


async def test_client_disconnect_closes_upstream(openai_upstream: OpenAIEmulator) -> None:
    openai_upstream.script(Reply(text="x" * 400, chunk_size=1, delay=0.02))
    async with serve_gateway(config(openai_upstream)) as gw:
        async with aiohttp.ClientSession() as http:
            r = await http.post(gw.url + "/v1/chat/completions", json=chat(stream=True))
            assert r.status == 200
            await r.content.readuntil(b"\n\n")
            r.close()  # drop the connection mid-stream
        assert await openai_upstream.wait_for_disconnects(1, timeout=5)
        assert openai_upstream.completed_streams == 0
        assert openai_upstream.open_streams == 0
        # The gateway is fine afterwards.
        status, _, _ = await post(gw.url, chat())
        assert status == 200
        await asyncio.sleep(0)
