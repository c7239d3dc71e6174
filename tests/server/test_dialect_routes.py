"""Client routes of the Anthropic, Responses and Gemini dialects: bad input in each dialect's own
error shape, same-dialect fast paths, token counting and model listings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tests.conftest import RunningGateway, serve_gateway
from tests.e2e.upstreams import KEY, Upstreams, upstreams

from relaygate.testing import Reply, ToolCall

Env = tuple[Upstreams, RunningGateway, aiohttp.ClientSession]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with upstreams() as up, serve_gateway(up.config()) as gw, aiohttp.ClientSession() as http:
        yield up, gw, http


def _anthropic_error(status: int, body: Any, etype: str = "invalid_request_error") -> str:
    assert body["type"] == "error", body
    assert body["error"]["type"] == etype, body
    return str(body["error"]["message"])


def _gemini_error(status: int, body: Any) -> str:
    assert set(body["error"]) >= {"code", "message", "status"}, body
    assert body["error"]["code"] == status
    return str(body["error"]["message"])


def _openai_error(body: Any) -> str:
    assert isinstance(body["error"], dict) and "message" in body["error"], body
    return str(body["error"]["message"])


MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"model": "ant/claude-sonnet-4-5", "messages": MSG}, "max_tokens"),
        ({"max_tokens": 5, "messages": MSG}, "model"),
        ({"model": "ant/claude-sonnet-4-5", "max_tokens": "5", "messages": MSG}, "max_tokens"),
        ({"model": "ant/claude-sonnet-4-5", "max_tokens": 5, "messages": "hi"}, "messages"),
        (
            {
                "model": "ant/claude-sonnet-4-5",
                "max_tokens": 5,
                "messages": [{"role": "bot", "content": "x"}],
            },
            "role",
        ),
        (
            {
                "model": "ant/claude-sonnet-4-5",
                "max_tokens": 5,
                "messages": MSG,
                "temperature": "hot",
            },
            "temperature",
        ),
        (
            {"model": "ant/claude-sonnet-4-5", "max_tokens": 5, "messages": MSG, "stream": "yes"},
            "stream",
        ),
    ],
)
async def test_anthropic_bad_input(env: Env, payload: dict[str, Any], needle: str) -> None:
    up, gw, http = env
    async with http.post(gw.url + "/v1/messages", json=payload) as r:
        assert r.status == 400
        assert needle in _anthropic_error(400, await r.json())
    assert up.ant.requests == [] or all(q.path != "/v1/messages" for q in up.ant.requests)


async def test_anthropic_malformed_and_unknown_model(env: Env) -> None:
    _up, gw, http = env
    async with http.post(gw.url + "/v1/messages", data=b"{not json") as r:
        assert r.status == 400
        assert "JSON" in _anthropic_error(400, await r.json())
    body = {"model": "nope/none", "max_tokens": 5, "messages": MSG}
    async with http.post(gw.url + "/v1/messages", json=body) as r:
        assert r.status == 404
        assert "nope/none" in _anthropic_error(404, await r.json(), "not_found_error")


@pytest.mark.parametrize(
    ("path", "payload", "needle"),
    [
        ("/v1beta/models/gem/gemini-2.5-flash:generateContent", {}, "contents"),
        ("/v1beta/models/gem/gemini-2.5-flash:generateContent", {"contents": "hi"}, "contents"),
        ("/v1/models/oai/gpt-4o-mini:generateContent", {"contents": [{"parts": "x"}]}, "parts"),
        (
            "/v1beta/models/oai/gpt-4o-mini:streamGenerateContent",
            {
                "contents": [{"role": "user", "parts": [{"text": "x"}]}],
                "generationConfig": {"temperature": "hot"},
            },
            "temperature",
        ),
        ("/v1beta/models/oai/gpt-4o-mini:explode", {"contents": []}, "explode"),
    ],
)
async def test_gemini_bad_input(env: Env, path: str, payload: dict[str, Any], needle: str) -> None:
    _up, gw, http = env
    async with http.post(gw.url + path, json=payload) as r:
        assert r.status == 400
        body = await r.json()
        assert needle in _gemini_error(400, body)
        assert body["error"]["status"] == "INVALID_ARGUMENT"


async def test_gemini_unknown_model_and_malformed(env: Env) -> None:
    _up, gw, http = env
    contents = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    async with http.post(gw.url + "/v1beta/models/nope/x:generateContent", json=contents) as r:
        assert r.status == 404
        assert _gemini_error(404, await r.json())
    async with http.post(
        gw.url + "/v1/models/gem/gemini-2.5-flash:generateContent", data=b"["
    ) as r:
        assert r.status == 400
        _gemini_error(400, await r.json())


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"input": "hi"}, "model"),
        ({"model": "rsp/gpt-5-mini"}, "input"),
        ({"model": "rsp/gpt-5-mini", "input": 5}, "input"),
        ({"model": "rsp/gpt-5-mini", "input": "x", "store": "no"}, "store"),
        ({"model": "rsp/gpt-5-mini", "input": "x", "max_output_tokens": 1.5}, "max_output_tokens"),
    ],
)
async def test_responses_bad_input(env: Env, payload: dict[str, Any], needle: str) -> None:
    _up, gw, http = env
    async with http.post(gw.url + "/v1/responses", json=payload) as r:
        assert r.status == 400
        assert needle in _openai_error(await r.json())


async def test_anthropic_fast_path_keeps_unknown_fields_and_beta(env: Env) -> None:
    """Claude Code's request shape reaches an Anthropic upstream byte-for-byte (model aside)."""
    up, gw, http = env
    body = {
        "model": "ant/claude-sonnet-4-5",
        "max_tokens": 32000,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "user_abc_session_1"},
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        "stream": True,
    }
    async with http.post(
        gw.url + "/v1/messages?beta=true",
        json=body,
        headers={
            "anthropic-beta": "context-management-2025-06-27",
            "anthropic-version": "2023-06-01",
        },
    ) as r:
        assert r.status == 200
        text = await r.text()
    assert "event: message_stop" in text
    sent = up.ant.requests[-1]
    assert sent.headers["anthropic-beta"] == "context-management-2025-06-27"
    assert sent.headers["x-api-key"] == KEY
    assert sent.json == {**body, "model": "claude-sonnet-4-5"}


async def test_claude_code_shape_to_other_dialects(env: Env) -> None:
    """Adaptive thinking, context_management, output_config, system messages inside messages:
    all survive translation (dropped where there is no counterpart, never a 400)."""
    up, gw, http = env
    tools = [
        {
            "name": f"Tool{i}",
            "description": "d",
            "input_schema": {"type": "object", "properties": {}},
        }
        for i in range(24)
    ]
    tools.append({"type": "web_search_20250305", "name": "web_search", "max_uses": 5})
    for prefix, model in (
        ("oai", "oai/gpt-4o-mini"),
        ("rsp", "rsp/gpt-5-mini"),
        ("gem", "gem/gemini-2.5-flash"),
    ):
        up.by_prefix(prefix).script(Reply(tool_calls=[ToolCall("Tool3", {"path": "/tmp"})]))
        body = {
            "model": model,
            "max_tokens": 32000,
            "thinking": {"type": "adaptive"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
            "output_config": {"effort": "medium"},
            "metadata": {"user_id": "u1"},
            "system": [
                {
                    "type": "text",
                    "text": "You are Claude Code.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "tools": tools,
            "messages": [
                {"role": "system", "content": "Extra system note."},
                {"role": "user", "content": "list /tmp"},
            ],
            "stream": True,
        }
        async with http.post(gw.url + "/v1/messages?beta=true", json=body) as r:
            assert r.status == 200, await r.text()
            text = await r.text()
        assert '"input_json_delta"' in text and '"stop_reason":"tool_use"' in text.replace(" ", "")
        sent = json.dumps(up.by_prefix(prefix).requests[-1].json)
        assert "You are Claude Code." in sent and "Extra system note." in sent
        assert "context_management" not in sent


async def test_gemini_fast_path_model_in_path_only(env: Env) -> None:
    up, gw, http = env
    contents = {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "safetySettings": []}
    async with http.post(
        gw.url + "/v1beta/models/gem/gemini-2.5-flash:streamGenerateContent?alt=sse", json=contents
    ) as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "finishReason" in await r.text()
    sent = up.gem.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.query.get("alt") == "sse"
    assert sent.headers["x-goog-api-key"] == KEY and "key" not in sent.query
    assert sent.json == contents  # no "model" leaked into the body


async def test_gemini_json_array_stream(env: Env) -> None:
    _up, gw, http = env
    contents = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    for model in ("gem/gemini-2.5-flash", "oai/gpt-4o-mini"):
        async with http.post(
            gw.url + f"/v1/models/{model}:streamGenerateContent", json=contents
        ) as r:
            assert r.status == 200
            assert r.headers["content-type"].startswith("application/json")
            chunks = json.loads(await r.text())
        assert isinstance(chunks, list) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
        assert (
            "".join(
                p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
            )
            == "echo: x"
        )


async def test_responses_fast_path(env: Env) -> None:
    up, gw, http = env
    body = {
        "model": "rsp/gpt-5-mini",
        "input": "hi",
        "reasoning": {"effort": "low"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc",
        "tools": [{"type": "web_search"}, {"type": "namespace", "name": "ns", "tools": []}],
    }
    async with http.post(gw.url + "/v1/responses", json=body) as r:
        assert r.status == 200
        assert (await r.json())["output"][0]["content"][0]["text"] == "echo: hi"
    assert up.rsp.requests[-1].json == {**body, "model": "gpt-5-mini"}


async def test_count_tokens(env: Env) -> None:
    up, gw, http = env
    body = {"model": "ant/claude-sonnet-4-5", "messages": MSG}
    async with http.post(gw.url + "/v1/messages/count_tokens", json=body) as r:
        assert r.status == 200
        assert "x-relaygate-token-count" not in r.headers  # the upstream counted
        assert (await r.json())["input_tokens"] > 0
    assert up.ant.requests[-1].path == "/v1/messages/count_tokens"
    body = {"model": "gem/gemini-2.5-flash", "messages": MSG}
    async with http.post(gw.url + "/v1/messages/count_tokens", json=body) as r:
        assert r.status == 200 and "x-relaygate-token-count" not in r.headers
        assert (await r.json())["input_tokens"] > 0
    assert up.gem.requests[-1].path.endswith(":countTokens")
    body = {"model": "oai/gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 400}]}
    async with http.post(gw.url + "/v1/messages/count_tokens", json=body) as r:
        assert r.status == 200
        assert r.headers["x-relaygate-token-count"] == "estimate"
        assert (await r.json())["input_tokens"] == 100
    contents = {"contents": [{"role": "user", "parts": [{"text": "y" * 40}]}]}
    async with http.post(
        gw.url + "/v1beta/models/ant/claude-sonnet-4-5:countTokens", json=contents
    ) as r:
        assert r.status == 200
        assert (await r.json())["totalTokens"] > 0


async def test_model_listings_in_each_shape(env: Env) -> None:
    _up, gw, http = env
    async with http.get(gw.url + "/v1beta/models") as r:
        names = [m["name"] for m in (await r.json())["models"]]
    assert "models/ant/claude-sonnet-4-5" in names
    async with http.get(gw.url + "/v1/models", headers={"x-goog-api-key": "k"}) as r:
        assert "models" in await r.json()
    async with http.get(gw.url + "/v1/models", headers={"anthropic-version": "2023-06-01"}) as r:
        body = await r.json()
        assert body["data"][0]["type"] == "model" and "has_more" in body
    async with http.get(gw.url + "/v1/models") as r:
        assert (await r.json())["object"] == "list"
    async with http.get(gw.url + "/v1beta/models/gem/gemini-2.5-flash") as r:
        assert (await r.json())["name"] == "models/gem/gemini-2.5-flash"
    async with http.get(gw.url + "/v1beta/models/nope/x") as r:
        assert r.status == 404
        _gemini_error(404, await r.json())
