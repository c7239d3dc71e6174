"""The benchmark's own pieces work: the bare proxy relays the paced upstream's stream, and the
report renders ratios and verdicts from a results document."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web
from bench import bare_proxy, driver, paced_upstream, payloads


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = _port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def proxied() -> AsyncIterator[str]:
    upstream, up_url = await _serve(paced_upstream.make_app(chunks=3, interval=0.01))
    proxy, proxy_url = await _serve(bare_proxy.make_app(up_url))
    try:
        yield proxy_url
    finally:
        await proxy.cleanup()
        await upstream.cleanup()


async def test_bare_proxy_relays_paced_stream_and_json(proxied: str) -> None:
    async with aiohttp.ClientSession() as http:
        url = proxied + "/v1/chat/completions"
        async with http.post(url, data=payloads.chat_request("m", stream=True)) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")
            text = await r.text()
        assert [f"tok{i} " in text for i in range(3)] == [True] * 3
        assert text.endswith("data: [DONE]\n\n")
        async with http.post(url, data=payloads.chat_request("m", stream=False)) as r:
            assert r.status == 200
            assert orjson.loads(await r.read())["usage"]["total_tokens"] == 36
        async with http.get(proxied + "/nope") as r:
            assert r.status == 404  # the upstream's answer, passed through


def test_nginx_config_inlines_the_fixed_bodies(tmp_path: object) -> None:
    from pathlib import Path

    conf = driver.nginx_conf(Path(str(tmp_path)), 12345).read_text()
    assert "listen 127.0.0.1:12345" in conf
    assert payloads.SSE_BODY.decode() in conf and payloads.COMPLETION.decode() in conf


def _run(rps: float, cpu: float, p50: int = 1000) -> dict[str, float]:
    return {"rps": rps, "cpu_us_per_req": cpu, "p50_us": p50, "errors": 0, "requests": 10}


def test_report_computes_ratios_and_verdicts() -> None:
    results = {
        "settings": {"open_streams": 1000},
        "scenarios": {
            "nonstream_c32": {"bare": _run(1000, 300), "relaygate": _run(1100, 280)},
            "stream_c32": {"bare": _run(1000, 300), "relaygate": _run(500, 600)},
            "nonstream_c1": {
                "direct": _run(9000, 0, 100),
                "bare": _run(900, 300, 1000),
                "relaygate": _run(800, 300, 1700),
            },
        },
        "rss_after_load_mb": {"bare": 40.0, "relaygate": 130.0},
    }
    lines = driver.table(results).splitlines()
    row = {line.split("  ")[0]: line for line in lines}
    assert "1.10x" in row["non-stream c=32 (RPS)"] and "PASS" in row["non-stream c=32 (RPS)"]
    assert "0.50x" in row["stream c=32 (streams/s)"] and "MISS" in row["stream c=32 (streams/s)"]
    assert "+0.700 ms" in row["p50 latency c=1 (ms)"] and "MISS" in row["p50 latency c=1 (ms)"]
    assert "MISS" in row["RSS after load (MB)"]
