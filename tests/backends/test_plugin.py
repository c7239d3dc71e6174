"""The third-party plugin path: install examples/plugin-backend, route to its kind."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from tests.conftest import serve_gateway

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "plugin-backend"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-install the example into a --target dir put on sys.path (the venv stays untouched)."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        sys.modules.pop("relaygate_echo", None)


def test_entry_point_is_registered(installed: Path) -> None:
    eps = importlib.metadata.entry_points(group="relaygate")
    assert "relaygate_echo" in {ep.value for ep in eps}
    from relaygate.backends.registry import load_registry
    from relaygate.hooks import make_plugin_manager

    registry = load_registry(make_plugin_manager())
    assert "echo" in registry.kinds
    assert "echo" in registry.reserved_prefixes()


async def test_route_to_the_plugin_kind(installed: Path) -> None:
    config = {
        "plugins": {"backends": [{"id": "echo", "kind": "echo", "config": {"reverse": True}}]}
    }
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.url + "/v1/models") as r:
            assert "echo/mirror" in {m["id"] for m in (await r.json())["data"]}
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={"model": "echo/mirror", "messages": [{"role": "user", "content": "stressed"}]},
        ) as r:
            body = await r.json()
            assert r.status == 200 and body["choices"][0]["message"]["content"] == "desserts"
            assert r.headers["x-relaygate-backend"] == "echo"
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={
                "model": "echo/mirror",
                "stream": True,
                "messages": [{"role": "user", "content": "a b"}],
            },
        ) as r:
            assert r.status == 200 and "[DONE]" in await r.text()


def test_plugin_options_are_strict(installed: Path) -> None:
    from relaygate.config import ConfigError, parse_config
    from relaygate.gateway import build_gateway

    cfg = parse_config(
        {"plugins": {"backends": [{"id": "echo", "kind": "echo", "config": {"revers": 1}}]}}, env={}
    )
    with pytest.raises(ConfigError, match=r"config\.revers: unknown field"):
        build_gateway(cfg, env={})
