"""Gemini CLI (``gemini -p``) through relaygate's Gemini route, served by an Anthropic upstream.
The model is picked as ``ant/claude-sonnet-4-5``: a model path segment containing ``/``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import serve_gateway
from tests.realcli.scripted import MARKER, PONG, TRIGGER, clean_env, cli_path, scripted

from relaygate.testing.anthropic_emulator import AnthropicEmulator

GEMINI = cli_path("gemini")
pytestmark = pytest.mark.skipif(
    GEMINI is None, reason="gemini CLI not installed (scripts/install-clis.sh)"
)
MODEL = "ant/claude-sonnet-4-5"


async def _run(tmp_path: Path, prompt: str) -> tuple[Any, str, list[Any]]:
    marker = tmp_path / "note.txt"
    marker.write_text(MARKER + "\n")
    emulator = scripted(AnthropicEmulator, marker)
    async with emulator:
        config = {
            "plugins": {
                "backends": [
                    {
                        "id": "ant",
                        "kind": "custom-anthropic-compatible",
                        "config": {
                            "backend_prefix": "ant",
                            "base_url": emulator.base_url,
                            "api_key": "k",
                        },
                    }
                ]
            },
            "default_model": MODEL,
        }
        async with serve_gateway(config) as gw:
            home = tmp_path / "home"
            (home / ".gemini").mkdir(parents=True, exist_ok=True)
            settings = {
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "telemetry": {"enabled": False},
            }
            (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
            env = clean_env(home) | {
                "GOOGLE_GEMINI_BASE_URL": gw.url,
                "GEMINI_API_KEY": "relaygate-test-key",
                "GEMINI_CLI_NO_RELAUNCH": "true",
                "GEMINI_CLI_TRUST_WORKSPACE": "true",
            }
            assert GEMINI is not None
            proc = await asyncio.create_subprocess_exec(
                GEMINI,
                "-p",
                prompt,
                "-m",
                MODEL,
                "--yolo",
                "--output-format",
                "json",
                cwd=tmp_path,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 180)
            assert proc.returncode == 0, (out.decode()[-3000:], err.decode()[-3000:])
            bodies = [r.json for r in emulator.requests if r.path == "/v1/messages"]
            return emulator, out.decode(), bodies


def _answer(out: str) -> str:
    start = out.find("{")
    return str(json.loads(out[start:])["response"])


async def test_prompt(tmp_path: Path) -> None:
    _emulator, out, bodies = await _run(tmp_path, "Reply with a greeting.")
    assert PONG in _answer(out)
    assert bodies and all(b["model"] == "claude-sonnet-4-5" for b in bodies)


async def test_tool_turn(tmp_path: Path) -> None:
    emulator, out, bodies = await _run(
        tmp_path, f"{TRIGGER}: read note.txt in the current directory"
    )
    assert emulator.tool_calls_made, "the model never asked for a Gemini CLI tool"
    assert MARKER in _answer(out)
    results = [
        b
        for m in bodies[-1]["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    ]
    assert results and MARKER in json.dumps(results)
