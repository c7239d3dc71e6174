"""The Gemini emulator speaks the real wire format: checked by hand, with google-genai's types,
with the google-genai client itself, and against the (independently written) dialect module."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from relaygate.canonical import ErrorKind, StopReason, ToolCallPart, Usage
from relaygate.dialects import gemini
from relaygate.dialects.sse import SSEDecoder
from relaygate.testing._emulator import Fault, Reply, ToolCall
from relaygate.testing.gemini_emulator import GeminiEmulator

MODEL = "gemini-2.5-flash"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
KEY = {"x-goog-api-key": "test-key"}


def url(emu: GeminiEmulator, method: str, *, version: str = "v1beta", model: str = MODEL) -> str:
    return f"{emu.base_url}/{version}/models/{model}:{method}"


def sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    events = SSEDecoder().feed(raw)
    assert all(e.event is None for e in events)  # Gemini names no events
    return [json.loads(e.data) for e in events]


async def test_generate_content_echo_validates_with_sdk() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        resp = await http.post(url(emu, "generateContent"), json=BODY)
        assert resp.status == 200
        raw = await resp.read()
    parsed = types.GenerateContentResponse.model_validate_json(raw)
    assert parsed.text == "echo: hello there"
    assert parsed.candidates is not None and parsed.candidates[0].finish_reason == "STOP"
    assert parsed.usage_metadata is not None and parsed.usage_metadata.prompt_token_count
    assert emu.requests[0].path == f"/v1beta/models/{MODEL}:generateContent"


async def test_stream_sse_framing_and_order() -> None:
    reply = Reply(
        text="Sunny and warm.",
        thinking="The user asks about weather; answer briefly.",
        thinking_signature="c2lnLXRleHQ=",
        input_tokens=30,
        output_tokens=12,
        reasoning_tokens=7,
        cache_read_tokens=10,
    )
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(reply)
        resp = await http.post(url(emu, "streamGenerateContent") + "?alt=sse", json=BODY)
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = await resp.read()
    assert raw.startswith(b"data: {") and raw.endswith(b"}\r\n\r\n")
    assert b"[DONE]" not in raw and b"event:" not in raw
    chunks = sse_chunks(raw)
    for chunk in chunks:
        types.GenerateContentResponse.model_validate(chunk)
        assert chunk["responseId"] == chunks[0]["responseId"]
        assert "usageMetadata" in chunk
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    thought_at = max(i for i, p in enumerate(parts) if p.get("thought"))
    text_at = min(i for i, p in enumerate(parts) if p.get("text") and not p.get("thought"))
    assert thought_at < text_at  # thoughts first
    assert "".join(p["text"] for p in parts if not p.get("thought")) == "Sunny and warm."
    assert parts[-1] == {"text": "", "thoughtSignature": "c2lnLXRleHQ="}
    assert [("finishReason" in c["candidates"][0]) for c in chunks] == [False] * (
        len(chunks) - 1
    ) + [True]
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 30,
        "candidatesTokenCount": 5,
        "totalTokenCount": 42,
        "cachedContentTokenCount": 10,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 30}],
        "thoughtsTokenCount": 7,
    }
    # The dialect's parser (an independent reading) agrees.
    parser = gemini.make_parser()
    events = [e for ev in SSEDecoder().feed(raw) for e in parser.feed(ev)] + parser.finish()
    assert events[-2].usage == Usage(30, 12, 10, 0, 7)  # type: ignore[union-attr]
    assert events[-1].stop_reason is StopReason.END_TURN  # type: ignore[union-attr]


async def test_parallel_function_calls_arrive_whole_in_one_chunk() -> None:
    reply = Reply(
        tool_calls=[
            ToolCall("get_weather", {"city": "Paris"}),
            ToolCall("get_time", '{"tz":"CET"}'),
        ],
        thinking_signature="c2lnLWNhbGw=",
    )
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(reply, reply)
        raw = await (
            await http.post(url(emu, "streamGenerateContent") + "?alt=sse", json=BODY)
        ).read()
        unary = await (await http.post(url(emu, "generateContent"), json=BODY)).json()
    [chunk] = sse_chunks(raw)
    parts = chunk["candidates"][0]["content"]["parts"]
    assert parts == [
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": "c2lnLWNhbGw=",
        },
        {"functionCall": {"name": "get_time", "args": {"tz": "CET"}}},
    ]
    assert chunk["candidates"][0]["finishReason"] == "STOP"  # Gemini has no tool-use reason
    assert unary["candidates"][0]["content"]["parts"] == parts
    response = gemini.parse_response(unary)
    assert response.stop_reason is StopReason.TOOL_USE
    assert [(c.id, c.name) for c in response.tool_calls()] == [
        ("call_0_get_weather", "get_weather"),
        ("call_1_get_time", "get_time"),
    ]


async def test_stream_without_alt_sse_is_a_json_array() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(Reply(text="abcdefgh", chunk_size=3))
        resp = await http.post(url(emu, "streamGenerateContent", version="v1"), json=BODY)
        assert resp.headers["Content-Type"].startswith("application/json")
        raw = await resp.read()
    assert raw.startswith(b"[{") and raw.endswith(b"}]") and b"\r\n,{" in raw
    chunks = json.loads(raw)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "abcdefgh"
    watch = gemini.make_watch()
    watch.feed(raw)
    assert watch.complete


async def test_auth_header_query_and_errors() -> None:
    async with GeminiEmulator(api_key="test-key") as emu, aiohttp.ClientSession() as http:
        ok = await http.post(url(emu, "generateContent"), json=BODY, headers=KEY)
        assert ok.status == 200
        ok = await http.post(url(emu, "generateContent") + "?key=test-key", json=BODY)
        assert ok.status == 200
        bad = await http.post(
            url(emu, "generateContent"), json=BODY, headers={"x-goog-api-key": "nope"}
        )
        assert bad.status == 400
        body = await bad.json()
        assert body["error"]["status"] == "INVALID_ARGUMENT"
        assert body["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        err = gemini.parse_error(400, json.dumps(body).encode())
        assert err.kind is ErrorKind.AUTHENTICATION
        missing = await http.post(url(emu, "generateContent"), json=BODY)
        assert missing.status == 403
        assert (await missing.json())["error"]["status"] == "PERMISSION_DENIED"
        models = await http.get(f"{emu.base_url}/v1beta/models?key=wrong")
        assert models.status == 400


async def test_models_listing_and_lookup() -> None:
    async with (
        GeminiEmulator(models=["gemini-2.5-flash", "gemini-2.5-pro"]) as emu,
        aiohttp.ClientSession() as http,
    ):
        for version in ("v1beta", "v1"):
            listed = await (await http.get(f"{emu.base_url}/{version}/models")).json()
            assert [m["name"] for m in listed["models"]] == [
                "models/gemini-2.5-flash",
                "models/gemini-2.5-pro",
            ]
            assert "generateContent" in listed["models"][0]["supportedGenerationMethods"]
        one = await http.get(f"{emu.base_url}/v1beta/models/gemini-2.5-pro")
        assert (await one.json())["baseModelId"] == "gemini-2.5-pro"
        missing = await http.post(url(emu, "generateContent", model="gemini-9"), json=BODY)
        assert missing.status == 404
        assert (await missing.json())["error"]["status"] == "NOT_FOUND"


async def test_request_validation() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        no_contents = await http.post(url(emu, "generateContent"), json={"generationConfig": {}})
        assert no_contents.status == 400
        body = await no_contents.json()
        assert "contents is not specified" in body["error"]["message"]
        assert gemini.parse_error(400, json.dumps(body).encode()).param == "contents"
        not_json = await http.post(url(emu, "generateContent"), data=b"{nope")
        assert not_json.status == 400
        unknown = await http.post(url(emu, "embedContentz"), json=BODY)
        assert unknown.status == 404


async def test_count_tokens() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        resp = await http.post(url(emu, "countTokens"), json=BODY)
        data = await resp.json()
    assert data["totalTokens"] >= 1
    types.CountTokensResponse.model_validate({"total_tokens": data["totalTokens"]})


async def test_status_fault_with_retry_after() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(Fault(status=429, retry_after=2, message="Resource has been exhausted"))
        resp = await http.post(url(emu, "generateContent"), json=BODY)
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"
        raw = await resp.read()
    body = json.loads(raw)
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    err = gemini.parse_error(429, raw)
    assert (err.kind, err.retry_after, err.message) == (
        ErrorKind.RATE_LIMIT,
        2.0,
        "Resource has been exhausted",
    )


async def test_status_fault_custom_body_and_500() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(Fault(status=502, body=b"<html>bad gateway</html>"), Fault(status=500))
        first = await http.post(url(emu, "generateContent"), json=BODY)
        assert (first.status, await first.read()) == (502, b"<html>bad gateway</html>")
        second = await http.post(url(emu, "generateContent"), json=BODY)
        assert (await second.json())["error"] == {
            "code": 500,
            "message": "emulated failure",
            "status": "INTERNAL",
        }


async def test_malformed_and_error_in_200() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(
            Fault(malformed=True),
            Fault(malformed=True),
            Fault(error_in_200=True, message="oops"),
            Fault(error_in_200=True, message="mid"),
        )
        plain = await http.post(url(emu, "generateContent"), json=BODY)
        assert plain.status == 200 and await plain.read() == b"{not json"
        stream = await http.post(url(emu, "streamGenerateContent") + "?alt=sse", json=BODY)
        [event] = SSEDecoder().feed(await stream.read())
        assert gemini.make_parser().feed(event)[0].kind == "error"
        err200 = await http.post(url(emu, "generateContent"), json=BODY)
        assert err200.status == 200
        with pytest.raises(Exception) as info:
            gemini.parse_response(await err200.json())
        assert "oops" in str(info.value)
        err_stream = await http.post(url(emu, "streamGenerateContent") + "?alt=sse", json=BODY)
        [chunk] = sse_chunks(await err_stream.read())
        assert chunk == {"error": {"code": 500, "message": "mid", "status": "INTERNAL"}}


async def test_cut_after_truncates_the_stream() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(
            Fault(cut_after=2, reply=Reply(text="a long answer that keeps going", chunk_size=3))
        )
        resp = await http.post(url(emu, "streamGenerateContent") + "?alt=sse", json=BODY)
        raw = b""
        with pytest.raises(aiohttp.ClientPayloadError):
            async for piece in resp.content.iter_any():
                raw += piece
    parser = gemini.make_parser()
    events = [e for ev in SSEDecoder().feed(raw) for e in parser.feed(ev)]
    assert sum(e.kind == "text_delta" for e in events) == 2
    [end] = parser.finish()
    assert end.kind == "error" and end.error.message == "stream ended before completion"  # type: ignore[union-attr]


async def test_reset_and_hang() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(Fault(reset=True), Fault(hang=True))
        with pytest.raises(aiohttp.ClientError):
            await http.post(url(emu, "generateContent"), json=BODY)
        with pytest.raises(asyncio.TimeoutError):
            await http.post(
                url(emu, "generateContent"), json=BODY, timeout=aiohttp.ClientTimeout(total=0.3)
            )


async def test_pacing_and_disconnect_counting() -> None:
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        emu.script(Reply(text="x" * 40, chunk_size=1, delay=0.05, first_delay=0.1))
        loop = asyncio.get_running_loop()
        started = loop.time()
        resp = await http.post(url(emu, "streamGenerateContent") + "?alt=sse", json=BODY)
        assert loop.time() - started >= 0.1
        await resp.content.readuntil(b"\r\n\r\n")
        resp.close()  # the client goes away mid-stream
        assert await emu.wait_for_disconnects(1)
        assert emu.completed_streams == 0


async def test_google_genai_client_end_to_end() -> None:
    """The official client, pointed at the emulator, reads replies, streams and errors."""
    async with GeminiEmulator(api_key="test-key") as emu:
        client = genai.Client(
            api_key="test-key", http_options=types.HttpOptions(base_url=emu.base_url)
        )
        emu.script(
            Reply(
                text="Hi from the emulator", thinking="brief", reasoning_tokens=3, output_tokens=8
            ),
            Reply(
                tool_calls=[ToolCall("get_weather", {"city": "Paris"})], thinking_signature="c2ln"
            ),
            Reply(text="streamed reply", chunk_size=5),
            Fault(status=503, message="The model is overloaded."),
        )
        config = types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(include_thoughts=True),
            http_options=types.HttpOptions(retry_options=types.HttpRetryOptions(attempts=1)),
        )
        first = await client.aio.models.generate_content(
            model=MODEL, contents="hello", config=config
        )
        assert first.text == "Hi from the emulator"
        assert first.usage_metadata is not None and first.usage_metadata.thoughts_token_count == 3
        second = await client.aio.models.generate_content(
            model=MODEL, contents="weather?", config=config
        )
        assert second.function_calls is not None
        assert second.function_calls[0].args == {"city": "Paris"}
        assert second.candidates[0].content.parts[0].thought_signature == b"sig"  # type: ignore[index,union-attr]
        pieces = [
            c.text
            async for c in await client.aio.models.generate_content_stream(
                model=MODEL, contents="s"
            )
        ]
        assert "".join(p or "" for p in pieces) == "streamed reply"
        with pytest.raises(genai_errors.ServerError) as info:
            await client.aio.models.generate_content(model=MODEL, contents="boom", config=config)
        assert info.value.code == 503
    sent = emu.requests[0]
    assert sent.headers["x-goog-api-key"] == "test-key"
    # google-genai 3.x sends the nested thinking config in snake_case (``include_thoughts``),
    # which is why the dialect reads both spellings everywhere.
    assert sent.json["generationConfig"]["thinkingConfig"] in (
        {"includeThoughts": True},
        {"include_thoughts": True},
    )
    # What the official client sends parses with the dialect.
    request = gemini.parse_request(sent.json)
    assert request.messages[0].text() == "hello"
    assert request.thinking is not None and request.thinking.enabled
    assert "includeThoughts" not in request.extras  # include_thoughts=True was understood


async def test_dialect_request_accepted_by_emulator() -> None:
    """build_request output is a body the emulator (and so Gemini's validation) accepts."""
    body = gemini.build_request(
        gemini.parse_request(
            {
                "contents": [
                    {"role": "user", "parts": [{"text": "weather?"}]},
                    {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {}}}]},
                    {
                        "role": "user",
                        "parts": [
                            {"functionResponse": {"name": "w", "response": {"result": "sun"}}}
                        ],
                    },
                ]
            }
        ),
        MODEL,
    )
    async with GeminiEmulator() as emu, aiohttp.ClientSession() as http:
        resp = await http.post(url(emu, "generateContent"), json=body)
        response = gemini.parse_response(await resp.json())
    assert response.text().startswith("echo: ")
    assert not any(isinstance(p, ToolCallPart) for p in response.content)
