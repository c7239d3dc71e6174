"""The upstream seam: both pooled transports (the native default and aiohttp) against the
emulator, and MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import pytest

from relaygate.backends.native import NativeTransport
from relaygate.backends.transport import (
    AiohttpTransport,
    MockReply,
    MockTransport,
    Timeouts,
)
from relaygate.canonical import ErrorKind, GatewayError
from relaygate.testing import Fault, OpenAIEmulator, Reply

BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
).encode()
STREAM_BODY = json.dumps(
    {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
).encode()
FAST = Timeouts(connect=1.0, first_token=2.0, total=5.0)


Make = Callable[[], NativeTransport | AiohttpTransport]


@pytest.fixture(params=["native", "aiohttp"])
def make(request: pytest.FixtureRequest) -> Make:
    return NativeTransport if request.param == "native" else AiohttpTransport


async def test_pooled_session_reuses_connections(
    openai_upstream: OpenAIEmulator, make: Make
) -> None:
    transport = make()
    url = openai_upstream.base_url + "/v1/chat/completions"
    headers = {"Authorization": "Bearer sk-test-key-123456", "Content-Type": "application/json"}
    try:
        first = await transport.send("POST", url, headers=headers, body=BODY, timeouts=FAST)
        assert first.status == 200 and json.loads(await first.read())["choices"]
        assert transport.pool_in_use == 0  # read() released the connection to the pool
        openai_upstream.script(Reply(text="slow", chunk_size=1, delay=0.02))
        stream = await transport.send("POST", url, headers=headers, body=STREAM_BODY, timeouts=FAST)
        assert transport.pool_in_use == 1  # borrowed while the stream is open
        chunks = [c async for c in stream.iter_chunks()]
        stream.release()
        assert b"[DONE]" in b"".join(chunks)
        assert transport.pool_in_use == 0
    finally:
        await transport.aclose()


async def test_first_byte_timeout_on_hang(openai_upstream: OpenAIEmulator, make: Make) -> None:
    openai_upstream.script(Fault(hang=True))
    transport = make()
    try:
        with pytest.raises(GatewayError) as info:
            await transport.send(
                "POST",
                openai_upstream.base_url + "/v1/chat/completions",
                headers={"Authorization": "Bearer sk-test-key-123456"},
                body=BODY,
                timeouts=Timeouts(connect=1.0, first_token=0.2, total=5.0),
            )
    finally:
        await transport.aclose()
    assert info.value.kind is ErrorKind.TIMEOUT and info.value.status == 504


async def test_first_delay_beyond_first_token_times_out(
    openai_upstream: OpenAIEmulator, make: Make
) -> None:
    openai_upstream.script(Reply(first_delay=1.0))
    transport = make()
    try:
        with pytest.raises(GatewayError) as info:
            await transport.send(
                "POST",
                openai_upstream.base_url + "/v1/chat/completions",
                headers={"Authorization": "Bearer sk-test-key-123456"},
                body=STREAM_BODY,
                timeouts=Timeouts(connect=1.0, first_token=0.1, total=5.0),
            )
    finally:
        await transport.aclose()
    assert info.value.kind is ErrorKind.TIMEOUT


async def test_total_timeout_while_streaming(openai_upstream: OpenAIEmulator, make: Make) -> None:
    openai_upstream.script(Reply(text="y" * 200, chunk_size=1, delay=0.02))
    transport = make()
    try:
        resp = await transport.send(
            "POST",
            openai_upstream.base_url + "/v1/chat/completions",
            headers={"Authorization": "Bearer sk-test-key-123456"},
            body=STREAM_BODY,
            timeouts=Timeouts(connect=1.0, first_token=1.0, total=0.3),
        )
        with pytest.raises(GatewayError) as info:
            async for _ in resp.iter_chunks():
                pass
        resp.close()
    finally:
        await transport.aclose()
    assert info.value.kind is ErrorKind.TIMEOUT
    assert await openai_upstream.wait_for_disconnects(1)


async def test_connection_refused_is_unavailable(make: Make) -> None:
    transport = make()
    try:
        with pytest.raises(GatewayError) as info:
            await transport.send(
                "GET", "http://127.0.0.1:9/v1/models", headers={}, body=None, timeouts=FAST
            )
    finally:
        await transport.aclose()
    assert info.value.kind is ErrorKind.UNAVAILABLE and info.value.status == 503


async def test_reset_mid_stream_is_connection_lost(
    openai_upstream: OpenAIEmulator, make: Make
) -> None:
    openai_upstream.script(Fault(cut_after=2, reply=Reply(text="abcdefghij", chunk_size=1)))
    transport = make()
    try:
        resp = await transport.send(
            "POST",
            openai_upstream.base_url + "/v1/chat/completions",
            headers={"Authorization": "Bearer sk-test-key-123456"},
            body=STREAM_BODY,
            timeouts=FAST,
        )
        with pytest.raises(GatewayError) as info:
            async for _ in resp.iter_chunks():
                pass
    finally:
        await transport.aclose()
    assert info.value.kind is ErrorKind.UPSTREAM


async def test_mock_transport_records_and_answers() -> None:
    seen: list[str] = []

    async def handler(
        method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> MockReply:
        seen.append(url)
        return MockReply(200, [b"data: 1\n\n", b"data: 2\n\n"], {"x-a": "b"})

    transport = MockTransport(handler)
    resp = await transport.send("POST", "http://x/y", headers={"h": "v"}, body=b"{}", timeouts=FAST)
    assert resp.status == 200 and resp.headers["x-a"] == "b"
    assert [c async for c in resp.iter_chunks()] == [b"data: 1\n\n", b"data: 2\n\n"]
    assert await resp.read() == b"data: 1\n\ndata: 2\n\n"
    assert transport.calls == [("POST", "http://x/y", {"h": "v"}, b"{}")]
    sync = MockTransport(lambda *_: MockReply(404, b"nope"))
    assert (await sync.send("GET", "u", headers={}, body=None, timeouts=FAST)).status == 404
    assert seen == ["http://x/y"]


async def test_upstream_cookies_never_reach_another_request(make: Make) -> None:
    """One pooled session serves every client: a cookie set for one must not ride on the next."""
    from aiohttp import web

    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response({"ok": True})
        response.set_cookie("session", "client-a-secret")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    transport = make()
    try:
        for _ in range(2):
            resp = await transport.send(
                "POST",
                f"http://localhost:{port}/v1/chat/completions",  # cookies are kept for names
                headers={"Content-Type": "application/json"},
                body=BODY,
                timeouts=FAST,
            )
            assert resp.status == 200
            await resp.read()
    finally:
        await transport.aclose()
        await runner.cleanup()
    assert seen == [None, None]
