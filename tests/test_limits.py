from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from tests.conftest import serve_gateway
from tests.opskit import MASTER, auth, chat, ops_config

from relaygate.config import ConfigError, parse_config
from relaygate.limits import problems
from relaygate.testing import OpenAIEmulator, Reply


@pytest.fixture(autouse=True)
def _master(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_TEST_MASTER", MASTER)


async def test_key_rpm_429_with_retry_after_in_each_dialect(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'l.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        key = await gw.app.state["store"].create_key("limited", rpm=2)
        statuses = []
        for _ in range(3):
            async with http.post(
                gw.url + "/v1/chat/completions", json=chat(), headers=auth(key.key)
            ) as r:
                statuses.append(r.status)
                last = (await r.json(), r.headers)
        assert statuses == [200, 200, 429]
        body, headers = last
        assert int(headers["Retry-After"]) >= 1
        assert body["error"]["type"] and "2 requests per minute" in body["error"]["message"]
        # The master key is not limited.
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat(), headers=auth(MASTER)
        ) as r:
            assert r.status == 200


async def test_key_tpm_counts_reported_tokens(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'l.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        key = await gw.app.state["store"].create_key("tpm", tpm=100)
        openai_upstream.script(Reply(text="big", input_tokens=60, output_tokens=50))
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat(), headers=auth(key.key)
        ) as r:
            assert r.status == 200
        await gw.app.state["limiter"].settle()
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat(), headers=auth(key.key)
        ) as r:
            assert r.status == 429
            assert "100 tokens per minute" in (await r.json())["error"]["message"]
            assert "Retry-After" in r.headers


async def test_budget_exhausted_is_402_naming_the_budget(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'l.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        key = await gw.app.state["store"].create_key("budgeted", budget=0.01)
        openai_upstream.script(Reply(text="x", input_tokens=10, output_tokens=10))  # $0.03
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat(), headers=auth(key.key)
        ) as r:
            assert r.status == 200
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat(), headers=auth(key.key)
        ) as r:
            assert r.status == 402
            message = (await r.json())["error"]["message"]
        assert "budgeted" in message and "$0.01 budget" in message


async def test_models_allow_list(openai_upstream: OpenAIEmulator, tmp_path: Path) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'l.db'}")
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        key = await gw.app.state["store"].create_key("scoped", models=["emu/gpt-4o*"])
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat(), headers=auth(key.key)
        ) as r:
            assert r.status == 200
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat("emu/o3"), headers=auth(key.key)
        ) as r:
            assert r.status == 403
            assert "may not use model 'emu/o3'" in (await r.json())["error"]["message"]


async def test_backend_rpm(openai_upstream: OpenAIEmulator, tmp_path: Path) -> None:
    config = ops_config(
        openai_upstream,
        f"sqlite:///{tmp_path / 'l.db'}",
        auth=False,
        limits={"backends": {"emu": {"rpm": 1}}},
    )
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        async with http.post(gw.url + "/v1/chat/completions", json=chat()) as r:
            assert r.status == 200
        async with http.post(gw.url + "/v1/chat/completions", json=chat()) as r:
            assert r.status == 429
            assert "every backend" in (await r.json())["error"]["message"]
        assert sum(r.path.endswith("/chat/completions") for r in openai_upstream.requests) == 1


def test_limits_config_problems_name_the_field() -> None:
    config = parse_config(
        {"limits": {"backends": {"ghost": {"rpm": 0}}, "default_key": {"rpn": 3}}}
    )
    found = problems(config)
    assert any(p.startswith("limits.default_key.rpn: unknown field") for p in found)
    assert any("limits.backends.ghost.rpm" in p for p in found)
    with pytest.raises(ConfigError):
        from relaygate.gateway import build_gateway
        from relaygate.server.app import build_asgi

        build_asgi(build_gateway(config))
