from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import aiohttp
import pytest
from tests.conftest import serve_gateway

from relaygate.backends.base import CallContext
from relaygate.backends.cli import (
    ClaudeCliBackend,
    CliBackend,
    CliOptions,
    CodexCliBackend,
    GeminiCliBackend,
)
from relaygate.canonical import (
    ErrorKind,
    GatewayError,
    Message,
    MessageStop,
    Request,
    Role,
    TextDelta,
    TextPart,
    UsageEvent,
)

FAKES = Path(__file__).resolve().parents[1] / "fake_clis"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{FAKES}{os.pathsep}{env.get('PATH', '')}"
    env["FAKE_CLI_LOG"] = str(tmp_path / "runs.jsonl")
    env.update(extra)
    return env


def _runs(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]


def _request(text: str = "hello", system: str | None = None) -> Request:
    req = Request(model="x", messages=[Message(Role.USER, [TextPart(text)])])
    if system:
        req.system = [TextPart(system)]
    return req


CTX = CallContext(request_id="r1")


async def test_claude_complete_json_with_usage_and_system_flag(tmp_path: Path) -> None:
    backend = ClaudeCliBackend("claude", CliOptions(), env=_env(tmp_path))
    response = await backend.complete(
        _request("untrusted <code>", system="you audit code"), "sonnet", CTX
    )
    assert response.text() == "echo: untrusted <code>"
    assert response.usage.cache_read_tokens == 7 and response.usage.output_tokens > 0
    run = _runs(tmp_path)[0]
    argv = run["argv"]
    assert isinstance(argv, list)
    assert argv[:3] == ["-p", "--output-format", "json"]
    assert argv[argv.index("--model") + 1] == "sonnet"
    # trusted instructions in the system flag, untrusted content alone on stdin
    assert argv[argv.index("--system-prompt") + 1] == "you audit code"
    assert run["stdin"] == "untrusted <code>"


@pytest.mark.parametrize("partial", [True, False])
async def test_claude_stream_json(tmp_path: Path, partial: bool) -> None:
    options = CliOptions()
    backend = ClaudeCliBackend(
        "claude", options, env=_env(tmp_path, FAKE_CLI_REPLY="streamed answer text")
    )
    if not partial:  # older CLIs: whole assistant messages only
        backend.argv = lambda r, m, stream: ["-p", "--output-format", "stream-json", "--verbose"]  # type: ignore[method-assign]
    events = [e async for e in backend.stream(_request(), "sonnet", CTX)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "streamed answer text"
    assert sum(isinstance(e, TextDelta) for e in events) == (4 if partial else 1)
    assert any(isinstance(e, UsageEvent) and e.usage.input_tokens > 0 for e in events)
    assert isinstance(events[-1], MessageStop)


async def test_gemini_and_codex_argv_stdin_and_stream(tmp_path: Path) -> None:
    env = _env(tmp_path)
    gemini = GeminiCliBackend("gemini", CliOptions(), env=env)
    codex = CodexCliBackend("codex", CliOptions(), env=env)
    r = await gemini.complete(_request("q1", system="sys"), "gemini-2.5-pro", CTX)
    assert r.text() == "echo: <system_instructions>\nsys\n</system_instructions>\n\nq1"
    r = await codex.complete(_request("q2"), "gpt-5", CTX)
    assert r.text() == "echo: q2"
    events = [e async for e in codex.stream(_request("a longer question"), "gpt-5", CTX)]
    assert (
        "".join(e.text for e in events if isinstance(e, TextDelta)).strip()
        == "echo: a longer question"
    )
    runs = _runs(tmp_path)
    assert runs[0]["argv"] == ["-m", "gemini-2.5-pro"]
    assert runs[1]["argv"] == ["exec", "--skip-git-repo-check", "-m", "gpt-5", "-"]
    assert runs[1]["stdin"] == "q2"


async def test_multi_turn_prompt_is_a_transcript(tmp_path: Path) -> None:
    backend = GeminiCliBackend("gemini", CliOptions(), env=_env(tmp_path))
    req = _request("first")
    req.messages += [
        Message(Role.ASSISTANT, [TextPart("reply")]),
        Message(Role.USER, [TextPart("second")]),
    ]
    await backend.complete(req, "", CTX)
    assert _runs(tmp_path)[0]["stdin"] == "User: first\n\nAssistant: reply\n\nUser: second"


@pytest.mark.parametrize("cls", [ClaudeCliBackend, GeminiCliBackend, CodexCliBackend])
async def test_nonzero_exit_is_502_with_redacted_stderr(
    tmp_path: Path, cls: type[CliBackend]
) -> None:
    backend = cls("agent", CliOptions(), env=_env(tmp_path, FAKE_CLI_MODE="fail"))
    for stream in (False, True):
        with pytest.raises(GatewayError) as info:
            if stream:
                _ = [e async for e in backend.stream(_request(), "m", CTX)]
            else:
                await backend.complete(_request(), "m", CTX)
        err = info.value
        assert err.kind is ErrorKind.UPSTREAM and err.status == 502
        assert "exited with status 2" in err.message and "401 Unauthorized" in err.message
        assert "sk-ant-secret-0123456789abcdef" not in err.message


async def test_garbage_and_empty_output(tmp_path: Path) -> None:
    claude = ClaudeCliBackend("claude", CliOptions(), env=_env(tmp_path, FAKE_CLI_MODE="garbage"))
    with pytest.raises(GatewayError, match="not JSON"):
        await claude.complete(_request(), "sonnet", CTX)
    with pytest.raises(GatewayError, match="not JSON"):
        _ = [e async for e in claude.stream(_request(), "sonnet", CTX)]
    claude_err = ClaudeCliBackend(
        "claude", CliOptions(), env=_env(tmp_path, FAKE_CLI_MODE="is_error")
    )
    with pytest.raises(GatewayError, match="Please run /login"):
        await claude_err.complete(_request(), "sonnet", CTX)
    gemini = GeminiCliBackend("gemini", CliOptions(), env=_env(tmp_path, FAKE_CLI_MODE="empty"))
    with pytest.raises(GatewayError, match="printed nothing"):
        await gemini.complete(_request(), "", CTX)
    with pytest.raises(GatewayError, match="without a result"):
        _ = [e async for e in gemini.stream(_request(), "", CTX)]


async def test_missing_binary_names_the_npm_package(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}
    for cls, package in (
        (ClaudeCliBackend, "@anthropic-ai/claude-code"),
        (GeminiCliBackend, "@google/gemini-cli"),
        (CodexCliBackend, "@openai/codex"),
    ):
        backend = cls("agent", CliOptions(), env=env)
        with pytest.raises(GatewayError) as info:
            await backend.complete(_request(), "m", CTX)
        assert f"npm install -g {package}" in info.value.message
        with pytest.raises(GatewayError):
            await backend.list_models()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    env = _env(tmp_path, FAKE_CLI_MODE="hang", FAKE_CLI_PIDFILE=str(pidfile))
    backend = GeminiCliBackend("gemini", CliOptions(timeout=1.0), env=env)
    with pytest.raises(GatewayError) as info:
        await backend.complete(_request(), "", CTX)
    assert info.value.kind is ErrorKind.TIMEOUT
    child = int(pidfile.read_text())
    for _ in range(100):  # the grandchild is reaped by init shortly after the kill
        if not _alive(child):
            break
        await asyncio.sleep(0.02)
    assert not _alive(child)


async def test_through_the_gateway(tmp_path: Path) -> None:
    config = {
        "plugins": {
            "backends": [
                {"id": "claude", "kind": "cli-claude", "config": {"models": ["sonnet"]}},
                {
                    "id": "broken",
                    "kind": "cli-gemini",
                    "config": {"env": {"FAKE_CLI_MODE": "fail"}},
                },
            ]
        }
    }
    async with serve_gateway(config, env=_env(tmp_path)) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.url + "/v1/models") as r:
            ids = {m["id"] for m in (await r.json())["data"]}
            assert {"claude/sonnet", "broken/gemini-2.5-pro"} <= ids
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={
                "model": "claude/sonnet",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as r:
            text = await r.text()
            assert r.status == 200 and "echo" in text and '"prompt_tokens"' in text
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={
                "model": "broken/gemini-2.5-pro",
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as r:
            body = await r.json()
            assert r.status == 502
            assert "exited with status 2" in body["error"]["message"]
            assert "sk-ant-secret" not in json.dumps(body)
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={
                "model": "broken/gemini-2.5-pro",
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as r:
            assert (
                r.status == 502
            )  # failed before the first byte: a clean error, not a broken stream
