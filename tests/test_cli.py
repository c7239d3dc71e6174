"""The ``relaygate`` command as users run it: real subprocesses for serve, CliRunner elsewhere."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from relaygate import __version__
from relaygate.cli import app
from relaygate.testing import OpenAIEmulator

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    env["RELAYGATE_LOCAL_MODEL"] = (
        "off"  # the in-process model is tested in tests/backends/test_local.py
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def relaygate(*args: str) -> list[str]:
    return [sys.executable, "-m", "relaygate.cli", *args]


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "relaygate.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


BAD = {
    "server": {"auth": {"enabled": True, "api_key_env": "RG_UNSET_MASTER"}},
    "plugins": {"backends": [{"id": "x", "kind": "nope", "config": {}}]},
}


def test_serve_refuses_bad_config_with_check_config_lines(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    env = clean_env()
    check = subprocess.run(
        relaygate("check-config", "--config", str(path)),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    serve = subprocess.run(
        relaygate("serve", "--config", str(path), "--port", str(free_port())),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert check.returncode == 1 and serve.returncode == 1
    lines = [line for line in check.stderr.splitlines() if line.strip()]
    assert len(lines) == 2
    assert [line for line in serve.stderr.splitlines() if line.strip()] == lines
    assert "plugins.backends[0] (x).kind" in lines[0]
    assert "RG_UNSET_MASTER" in lines[1]


def test_serve_without_config_starts_and_says_how_to_add_a_provider(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        relaygate("serve", "--port", str(port), "--log-level", "warning"),
        env=clean_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    body = r.read()
                    break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert body, proc.stderr.read() if proc.poll() is not None and proc.stderr else "no answer"
        assert b'"backends":{}' in body
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "No providers configured" in err
    assert "OPENAI_API_KEY" in err and "--config" in err
    assert f"listening on http://127.0.0.1:{port}" in err


def test_models_lists_static_inventory_and_routes(tmp_path: Path) -> None:
    doc = {
        "plugins": {
            "backends": [
                {
                    "id": "p1",
                    "kind": "custom-openai-legacy-compatible",
                    "config": {
                        "backend_prefix": "p1",
                        "base_url": "http://127.0.0.1:9/v1",
                        "api_key": "sk-not-used-000",
                        "models": {"items": [{"native_id": "alpha", "display_name": "Alpha"}]},
                    },
                }
            ]
        },
        "routes": [{"name": "smart", "targets": ["p1/alpha"]}],
    }
    result = runner.invoke(
        app, ["models", "--config", str(write(tmp_path, doc))], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "p1/alpha" in result.output and "Alpha" in result.output
    assert "smart" in result.output and "fallback" in result.output


async def test_models_discovers_and_reports_failures(tmp_path: Path) -> None:
    async with OpenAIEmulator(api_key="sk-good-key-0001", models=["disc-a", "disc-b"]) as up:

        def entry(backend_id: str, key: str) -> dict[str, Any]:
            return {
                "id": backend_id,
                "kind": "custom-openai-legacy-compatible",
                "config": {
                    "backend_prefix": backend_id,
                    "base_url": up.base_url + "/v1",
                    "api_key": key,
                },
            }

        path = write(
            tmp_path,
            {
                "plugins": {
                    "backends": [
                        entry("good", "sk-good-key-0001"),
                        entry("bad", "sk-bad-key-99999"),
                    ]
                }
            },
        )
        proc = await asyncio.create_subprocess_exec(
            *relaygate("models", "--config", str(path)),
            env=clean_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    text = out.decode()
    assert "good/disc-a" in text and "good/disc-b" in text
    assert "bad/" not in text
    assert "bad: discovery failed" in err.decode()
    assert "sk-bad-key-99999" not in (out + err).decode()


def test_version_and_help() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and __version__ in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "check-config", "models"):
        assert command in result.output


@pytest.mark.parametrize("args", [["check-config"], ["serve", "--port", "notanumber"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == 2
