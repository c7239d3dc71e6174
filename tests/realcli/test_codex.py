"""Codex CLI (``codex exec``) through relaygate's Responses route, served by a Gemini upstream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import serve_gateway
from tests.realcli.scripted import MARKER, PONG, TRIGGER, clean_env, cli_path, scripted

from relaygate.testing.gemini_emulator import GeminiEmulator

CODEX = cli_path("codex")
pytestmark = pytest.mark.skipif(
    CODEX is None, reason="codex CLI not installed (scripts/install-clis.sh)"
)
MODEL = "gem/gemini-2.5-flash"


async def _run(tmp_path: Path, prompt: str) -> tuple[Any, str, list[Any], list[Any]]:
    marker = tmp_path / "note.txt"
    marker.write_text(MARKER + "\n")
    emulator = scripted(GeminiEmulator, marker)
    async with emulator:
        config = {
            "plugins": {
                "backends": [
                    {
                        "id": "gem",
                        "kind": "gemini",
                        "config": {"base_url": emulator.base_url, "api_key": "k"},
                    }
                ]
            }
        }
        async with serve_gateway(config) as gw:
            home = tmp_path / "home"
            (home / ".codex").mkdir(parents=True, exist_ok=True)
            env = clean_env(home) | {
                "CODEX_HOME": str(home / ".codex"),
                "RELAY_KEY": "relaygate-test",
            }
            provider = (
                f'model_providers.relay={{name="relay", base_url="{gw.url}/v1", '
                'wire_api="responses", env_key="RELAY_KEY"}'
            )
            assert CODEX is not None
            proc = await asyncio.create_subprocess_exec(
                CODEX,
                "exec",
                "--skip-git-repo-check",
                "--json",
                "--dangerously-bypass-approvals-and-sandbox",
                "-c",
                provider,
                "-c",
                "model_provider=relay",
                "-m",
                MODEL,
                prompt,
                cwd=tmp_path,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 180)
            assert proc.returncode == 0, (out.decode()[-3000:], err.decode()[-3000:])
            events = [
                json.loads(line) for line in out.decode().splitlines() if line.startswith("{")
            ]
            bodies = [r.json for r in emulator.requests if r.method == "POST"]
            return emulator, err.decode(), events, bodies


def _agent_texts(events: list[Any]) -> list[str]:
    return [
        e["item"].get("text", "")
        for e in events
        if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "agent_message"
    ]


async def test_prompt(tmp_path: Path) -> None:
    _emulator, _err, events, bodies = await _run(tmp_path, "Reply with a greeting.")
    assert PONG in _agent_texts(events)
    assert bodies, "the upstream was never called"


async def test_tool_turn(tmp_path: Path) -> None:
    emulator, _err, events, bodies = await _run(tmp_path, f"{TRIGGER}: show me note.txt")
    assert emulator.tool_calls_made, "the model never asked for a Codex tool"
    assert any(MARKER in t for t in _agent_texts(events))
    # The command output went back to Gemini as a functionResponse.
    responses = [p for c in bodies[-1]["contents"] for p in c["parts"] if "functionResponse" in p]
    assert responses and MARKER in json.dumps(responses)
