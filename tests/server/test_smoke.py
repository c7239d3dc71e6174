from __future__ import annotations

import aiohttp
from tests.conftest import openai_backend, serve_gateway

from relaygate.testing import OpenAIEmulator, Reply, ToolCall


async def test_chat_non_stream_and_stream(openai_upstream: OpenAIEmulator) -> None:
    config = {"plugins": {"backends": [openai_backend(openai_upstream)]}}
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        ) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
            assert body["choices"][0]["message"]["content"] == "echo: hi"
            assert r.headers["x-relaygate-backend"] == "emu"
        openai_upstream.script(Reply(tool_calls=[ToolCall("f", {"a": 1}), ToolCall("g", {"b": 2})]))
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={
                "model": "emu/gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as r:
            text = await r.text()
            assert r.status == 200
            assert "[DONE]" in text and '"choices":[]' not in text
