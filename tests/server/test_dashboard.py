"""``/dashboard``: the static page is served without auth, its API calls work with the master key,
and a real headless Chromium renders providers, usage and keys from them."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from pathlib import Path

import aiohttp
import pytest
from tests.conftest import serve_gateway
from tests.opskit import MASTER, auth, ops_config

from relaygate.testing import OpenAIEmulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_TEST_MASTER", MASTER)


async def test_page_and_assets_are_served_and_its_api_calls_work(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'd.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.url + "/dashboard") as r:  # no key: the page holds no secret
            assert r.status == 200 and r.content_type == "text/html"
            assert "script-src 'self'" in r.headers["content-security-policy"]
            page = await r.text()
        assets = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page)
        assert sorted(assets) == ["/dashboard/dashboard.css", "/dashboard/dashboard.js"]
        for asset in assets:
            async with http.get(gw.url + asset) as r:
                assert r.status == 200 and len(await r.read()) > 100
        async with http.get(gw.url + "/dashboard/dashboard.js") as r:
            script = await r.text()
        # Every admin path the script calls answers with the master key, and only with it.
        called = sorted(set(re.findall(r'api\("(/[a-z/]+)', script)))
        assert called == ["/api/keys", "/api/providers", "/api/usage/summary", "/health"]
        for path in called:
            async with http.get(gw.url + path, headers=auth(MASTER)) as r:
                assert r.status == 200, path
            if path.startswith("/api/"):
                async with http.get(gw.url + path) as r:
                    assert r.status == 401, path
        async with http.get(gw.url + "/api/keys", headers=auth(MASTER)) as r:
            assert (await r.json())["success"] is True


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
async def test_headless_chromium_renders_the_dashboard(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'd.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        key = await gw.app.state["store"].create_key("team-<b>bold</b>", rpm=7)
        for _ in range(3):
            async with http.post(
                gw.url + "/v1/chat/completions",
                headers=auth(key.key),
                json={"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
            ) as r:
                assert r.status == 200
        with tempfile.TemporaryDirectory() as profile:
            proc = await asyncio.create_subprocess_exec(
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=8000",
                "--dump-dom",
                f"{gw.url}/dashboard#key={MASTER}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 90)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        dom = out.decode()
        assert "data-loaded" in dom, err.decode()[-2000:]
        providers = dom[dom.index('id="providers"') : dom.index('id="usage"')]
        assert "<td>emu</td>" in providers and ">closed</td>" in providers
        usage = dom[dom.index('id="usage"') : dom.index('id="keys"')]
        assert "<td>emu</td>" in usage  # grouped by backend
        assert re.search(r'<td class="num">3</td>', usage)
        keys = dom[dom.index('id="keys"') :]
        # Names are text, never markup; the secret is nowhere in the page.
        assert "team-&lt;b&gt;bold&lt;/b&gt;" in keys and ">active</td>" in keys
        assert key.key not in dom and MASTER not in dom
        assert "Updated" in dom
