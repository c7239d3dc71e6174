"""Claude Code (``claude -p``) through relaygate, routed to an OpenAI Chat Completions upstream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import serve_gateway
from tests.realcli.scripted import MARKER, PONG, TRIGGER, clean_env, cli_path, scripted

from relaygate.testing import OpenAIEmulator

CLAUDE = cli_path("claude")
pytestmark = pytest.mark.skipif(
    CLAUDE is None, reason="claude CLI not installed (scripts/install-clis.sh)"
)
MODEL = "up/gpt-4o-mini"


async def _run(tmp_path: Path, prompt: str, *extra: str) -> tuple[Any, str, list[Any]]:
    marker = tmp_path / "note.txt"
    marker.write_text(MARKER + "\n")
    emulator = scripted(OpenAIEmulator, marker)
    async with emulator:
        config = {
            "plugins": {
                "backends": [
                    {
                        "id": "up",
                        "kind": "custom-openai-legacy-compatible",
                        "config": {
                            "backend_prefix": "up",
                            "base_url": emulator.base_url + "/v1",
                            "api_key": "k",
                        },
                    }
                ]
            },
            # Whatever model Claude Code picks for side requests lands on the same upstream.
            "routes": [{"name": "claude-haiku-4-5", "targets": [MODEL]}],
        }
        async with serve_gateway(config) as gw:
            home = tmp_path / "home"
            home.mkdir(exist_ok=True)
            env = clean_env(home) | {
                "ANTHROPIC_BASE_URL": gw.url,
                "ANTHROPIC_API_KEY": "sk-ant-relaygate-test",
                "ANTHROPIC_SMALL_FAST_MODEL": MODEL,
                "ANTHROPIC_DEFAULT_HAIKU_MODEL": MODEL,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
            }
            assert CLAUDE is not None
            proc = await asyncio.create_subprocess_exec(
                CLAUDE,
                "-p",
                prompt,
                "--model",
                MODEL,
                "--output-format",
                "json",
                *extra,
                cwd=tmp_path,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 180)
            assert proc.returncode == 0, (out.decode()[-2000:], err.decode()[-2000:])
            bodies = [r.json for r in emulator.requests if r.method == "POST"]
            return emulator, out.decode(), bodies


async def test_prompt(tmp_path: Path) -> None:
    _emulator, out, bodies = await _run(tmp_path, "Reply with a greeting.")
    assert json.loads(out)["result"] == PONG
    assert bodies and all(b["model"] == "gpt-4o-mini" for b in bodies)


async def test_tool_turn(tmp_path: Path) -> None:
    emulator, out, bodies = await _run(
        tmp_path, f"{TRIGGER}: read note.txt and tell me what it says.", "--allowedTools", "Read"
    )
    assert emulator.tool_calls_made == ["Read"]
    assert MARKER in json.loads(out)["result"]
    # The tool result went back to the upstream as a Chat Completions tool message.
    last = bodies[-1]["messages"]
    tool_msgs = [m for m in last if m["role"] == "tool"]
    assert tool_msgs and MARKER in json.dumps(tool_msgs)
    first_with_tools = next(b for b in bodies if b.get("tools"))
    assert len(first_with_tools["tools"]) > 10  # Claude Code's own tool set crossed over
