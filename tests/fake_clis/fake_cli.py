"""Stand-ins for the ``claude``, ``gemini`` and ``codex`` CLIs, behaving like the real ones on
the paths relaygate uses. Controlled by environment variables:

* ``FAKE_CLI_MODE``: ``ok`` (default) · ``fail`` (stderr + exit 2) · ``garbage`` (non-JSON /
  nonsense on stdout, exit 0) · ``empty`` (prints nothing, exit 0) · ``hang`` (starts a child
  ``sleep`` whose pid goes to ``FAKE_CLI_PIDFILE``, then sleeps) · ``is_error`` (claude: a result
  with ``is_error: true``).
* ``FAKE_CLI_LOG``: append ``{"cli", "argv", "stdin"}`` as one JSON line per run.
* ``FAKE_CLI_REPLY``: the answer text (default ``"echo: <prompt>"``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def _out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _claude(argv: list[str], reply: str, prompt: str) -> int:
    if "-p" not in argv and "--print" not in argv:
        sys.stderr.write("interactive mode needs a TTY\n")
        return 1
    fmt = argv[argv.index("--output-format") + 1] if "--output-format" in argv else "text"
    model = argv[argv.index("--model") + 1] if "--model" in argv else "claude-sonnet-4-5"
    usage = {
        "input_tokens": max(1, len(prompt) // 4),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 7,
        "output_tokens": max(1, len(reply) // 4),
    }
    session = "3f1c2a9e-0000-4000-8000-000000000001"
    result = {
        "type": "result",
        "subtype": "success",
        "is_error": os.environ.get("FAKE_CLI_MODE") == "is_error",
        "duration_ms": 1234,
        "num_turns": 1,
        "result": reply
        if os.environ.get("FAKE_CLI_MODE") != "is_error"
        else "Invalid API key · Please run /login",
        "session_id": session,
        "total_cost_usd": 0.0012,
        "usage": usage,
    }
    if fmt == "text":
        print(reply)
        return 0
    if fmt == "json":
        _out(result)
        return 0
    if fmt == "stream-json":
        if "--verbose" not in argv:
            sys.stderr.write(
                "Error: When using --print, --output-format=stream-json requires --verbose\n"
            )
            return 1
        _out(
            {
                "type": "system",
                "subtype": "init",
                "session_id": session,
                "model": model,
                "tools": [],
            }
        )
        if "--include-partial-messages" in argv:
            _out(
                {
                    "type": "stream_event",
                    "session_id": session,
                    "event": {"type": "message_start", "message": {"id": "msg_1", "model": model}},
                }
            )
            _out(
                {
                    "type": "stream_event",
                    "session_id": session,
                    "event": {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                }
            )
            for i in range(0, len(reply), 5):
                _out(
                    {
                        "type": "stream_event",
                        "session_id": session,
                        "event": {
                            "type": "content_block_delta",
                            "index": 0,
                            "delta": {"type": "text_delta", "text": reply[i : i + 5]},
                        },
                    }
                )
            _out(
                {
                    "type": "stream_event",
                    "session_id": session,
                    "event": {"type": "content_block_stop", "index": 0},
                }
            )
        _out(
            {
                "type": "assistant",
                "session_id": session,
                "message": {
                    "id": "msg_1",
                    "model": model,
                    "role": "assistant",
                    "content": [{"type": "text", "text": reply}],
                    "usage": usage,
                },
            }
        )
        _out(result)
        return 0
    sys.stderr.write(f"unknown output format {fmt}\n")
    return 1


def main(cli: str) -> None:
    argv = sys.argv[1:]
    prompt = sys.stdin.read()
    log = os.environ.get("FAKE_CLI_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(json.dumps({"cli": cli, "argv": argv, "stdin": prompt}) + "\n")
    mode = os.environ.get("FAKE_CLI_MODE", "ok")
    reply = os.environ.get("FAKE_CLI_REPLY", f"echo: {prompt.strip()}")
    if mode == "fail":
        sys.stderr.write(
            "starting…\nError: request failed with API key sk-ant-secret-0123456789abcdef (401 Unauthorized)\n"
        )
        sys.exit(2)
    if mode == "hang":
        child = subprocess.Popen(["sleep", "60"])
        pidfile = os.environ.get("FAKE_CLI_PIDFILE")
        if pidfile:
            with open(pidfile, "w") as fh:
                fh.write(str(child.pid))
        time.sleep(60)
        sys.exit(0)
    if mode == "empty":
        sys.exit(0)
    if mode == "garbage":
        sys.stdout.write("<html><body>502 Bad Gateway</body></html>\n" if cli == "claude" else "")
        sys.exit(0)
    if cli == "claude":
        sys.exit(_claude(argv, reply, prompt))
    if cli == "codex":
        if argv[:1] != ["exec"] or argv[-1:] != ["-"]:
            sys.stderr.write("usage: codex exec [OPTIONS] [PROMPT|-]\n")
            sys.exit(2)
        if "--skip-git-repo-check" not in argv and not os.path.isdir(".git"):
            sys.stderr.write(
                "Not inside a trusted directory and --skip-git-repo-check was not specified.\n"
            )
            sys.exit(1)
        sys.stderr.write("[2025-01-01T00:00:00] OpenAI Codex v0.40.0 (research preview)\n")
    # gemini and codex: the answer on stdout, in a few writes
    for i in range(0, len(reply), 6):
        sys.stdout.write(reply[i : i + 6])
        sys.stdout.flush()
    sys.stdout.write("\n")
    sys.exit(0)
