"""Emulators scripted like a model driving a coding CLI: asked to read the marker file, they call
the CLI's own file-reading (or shell) tool; once the tool result carrying the marker comes back,
they answer with it. Any other request gets a plain answer."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from relaygate.testing import Emulator, OpenAIEmulator, Reply, ToolCall
from relaygate.testing.anthropic_emulator import AnthropicEmulator
from relaygate.testing.gemini_emulator import GeminiEmulator

TRIGGER = "RELAYGATE_READ_THE_FILE"
MARKER = "relaygate-marker-7f3a9c"
PONG = "PONG-from-relaygate"
_READ_TOOLS = ("Read", "read_file", "exec_command", "shell", "run_shell_command")
_PATH_KEYS = ("file_path", "absolute_path", "path")


def tool_specs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Declared tools of an upstream body of any dialect: name → JSON schema."""
    out: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if isinstance(tool.get("function"), dict):  # openai chat
            out[tool["function"]["name"]] = tool["function"].get("parameters") or {}
        elif "functionDeclarations" in tool:  # gemini
            for decl in tool["functionDeclarations"]:
                out[decl["name"]] = decl.get("parametersJsonSchema") or decl.get("parameters") or {}
        elif "name" in tool:  # anthropic, responses
            out[tool["name"]] = tool.get("input_schema") or tool.get("parameters") or {}
    return out


def _call_for(name: str, schema: dict[str, Any], path: Path) -> ToolCall:
    props = schema.get("properties") or {}
    if name in ("exec_command", "shell", "run_shell_command"):
        if name == "shell":
            return ToolCall(name, {"command": ["cat", str(path)]})
        key = "cmd" if "cmd" in props else "command"
        return ToolCall(name, {key: f"cat {path}"})
    key = next((k for k in _PATH_KEYS if k in props), "file_path")
    return ToolCall(name, {key: str(path)})


class ScriptedMixin:
    marker_file: Path
    tool_calls_made: list[str]

    def decide(self, body: dict[str, Any]) -> Reply:
        text = json.dumps(body)
        if MARKER in text:
            return Reply(text=f"The file says {MARKER}.")
        if TRIGGER in text:
            specs = tool_specs(body)
            for name in _READ_TOOLS:
                if name in specs:
                    self.tool_calls_made.append(name)
                    return Reply(tool_calls=[_call_for(name, specs[name], self.marker_file)])
        return Reply(text=PONG)


def scripted(base: type[Emulator], marker_file: Path, **kwargs: Any) -> Emulator:
    class Scripted(ScriptedMixin, base):  # type: ignore[valid-type, misc]
        def next_item(self) -> Reply:
            return self.decide(self.requests[-1].json or {})

    emulator = Scripted(**kwargs)
    emulator.marker_file = marker_file
    emulator.tool_calls_made = []
    return emulator


EMULATORS: dict[str, type[Emulator]] = {
    "openai-chat": OpenAIEmulator,
    "anthropic": AnthropicEmulator,
    "gemini": GeminiEmulator,
}


def cli_path(name: str) -> str | None:
    root = Path(__file__).resolve().parents[2]
    local = root / ".tools" / "node_modules" / ".bin" / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def clean_env(home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TERM", "SYSTEMROOT", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(home)
    env["NO_COLOR"] = "1"
    return env
