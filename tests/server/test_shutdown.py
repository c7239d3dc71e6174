"""Graceful shutdown: once draining, new generation requests get 503 in the client's own dialect
(with Retry-After) while a stream already running finishes in full."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from tests.conftest import openai_backend, serve_gateway

from relaygate.testing import OpenAIEmulator, Reply

MSG = [{"role": "user", "content": "hi"}]


async def test_draining_refuses_new_requests_in_their_dialect_while_streams_finish(
    openai_upstream: OpenAIEmulator,
) -> None:
    text = "one two three four five six seven eight"
    openai_upstream.script(Reply(text=text, chunk_size=4, delay=0.02))
    config = {"plugins": {"backends": [openai_backend(openai_upstream)]}}
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={"model": "emu/gpt-4o-mini", "messages": MSG, "stream": True},
        ) as stream:
            assert stream.status == 200
            first = await stream.content.readline()
            assert first.startswith(b"data: ")
            assert gw.app.in_flight == 1
            gw.app.drain()  # what SIGTERM does before uvicorn starts its own drain

            refused = {
                "/v1/chat/completions": {"model": "emu/gpt-4o-mini", "messages": MSG},
                "/v1/messages": {"model": "emu/gpt-4o-mini", "max_tokens": 5, "messages": MSG},
                "/v1/responses": {"model": "emu/gpt-4o-mini", "input": "hi"},
                "/v1beta/models/emu/gpt-4o-mini:generateContent": {
                    "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
                },
            }
            bodies = {}
            for path, body in refused.items():
                async with http.post(gw.url + path, json=body) as r:
                    assert r.status == 503, path
                    assert r.headers["Retry-After"] == "1"
                    bodies[path] = await r.json()
            assert bodies["/v1/chat/completions"]["error"]["message"].startswith(
                "relaygate is shutting down"
            )
            assert bodies["/v1/messages"]["type"] == "error"
            assert bodies["/v1/messages"]["error"]["type"].endswith("_error")
            assert "error" in bodies["/v1/responses"]
            gemini = bodies["/v1beta/models/emu/gpt-4o-mini:generateContent"]
            assert gemini["error"]["code"] == 503 and gemini["error"]["status"] == "UNAVAILABLE"
            async with http.get(gw.url + "/health") as r:
                assert r.status == 503 and (await r.json())["status"] == "draining"

            rest = await asyncio.wait_for(stream.content.read(), 5)
        events = (first + rest).decode().split("\n\n")
        assert events[-2] == "data: [DONE]" or "data: [DONE]" in events
        streamed = "".join(
            json.loads(e[6:])["choices"][0]["delta"].get("content", "")
            for e in events
            if e.startswith("data: {") and '"choices":[{' in e
        )
        assert streamed == text
        for _ in range(50):  # the handler returns just after the client saw the last byte
            if gw.app.in_flight == 0:
                break
            await asyncio.sleep(0.02)
        assert gw.app.in_flight == 0
