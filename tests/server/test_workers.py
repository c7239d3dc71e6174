"""``relaygate serve --workers N``: N processes behind one port, one shared loop guard, one
rate-limit count when Redis is configured."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from tests.conftest import openai_backend
from tests.opskit import REDIS_URL, need_redis, unique

from relaygate.testing import OpenAIEmulator

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_two_workers(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "RELAYGATE_LOOP_GUARD"}
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.Popen(
        [sys.executable, "-m", "relaygate.cli", "serve", "--config", str(config),
         "--port", str(port), "--workers", "2", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_serve_workers_share_one_port(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "relaygate.yaml"
    config.write_text(json.dumps({"server": {"shutdown_grace_seconds": 1}}))
    proc = _serve_two_workers(config, port)
    try:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            workers = [  # uvicorn spawns its workers through multiprocessing
                c for c in _children(proc.pid) if b"spawn_main" in _cmdline(c)
            ]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=2) as r:
                    body = json.loads(r.read())
                if len(workers) >= 2:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert body["name"] == "relaygate"
        assert len(workers) == 2, workers
        guards = {_environ(pid).get("RELAYGATE_LOOP_GUARD") for pid in workers}
        assert len(guards) == 1 and None not in guards and "" not in guards
    finally:
        _stop(proc)


def _discoveries(upstream: OpenAIEmulator) -> int:
    return sum(r.path == "/v1/models" for r in upstream.requests)


@pytest.mark.redis
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
async def test_workers_share_one_rate_limit_through_redis(
    tmp_path: Path, openai_upstream: OpenAIEmulator
) -> None:
    """Connections land on either worker; with ``redis.url`` the RPM count is one count."""
    need_redis()
    port = _free_port()
    backend = unique("w")  # a fresh Redis counter for every run
    config = tmp_path / "relaygate.yaml"
    config.write_text(
        json.dumps(
            {
                "server": {"shutdown_grace_seconds": 1},
                "plugins": {"backends": [openai_backend(openai_upstream, backend)]},
                "redis": {"url": REDIS_URL},
                "limits": {"backends": {backend: {"rpm": 5}}},
            }
        )
    )
    proc = _serve_two_workers(config, port)
    url = f"http://127.0.0.1:{port}"
    try:
        # A new connection per request (force_close), so the kernel spreads them over both.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                workers = [c for c in _children(proc.pid) if b"spawn_main" in _cmdline(c)]
                # Each worker discovers the models as it starts: two lists asked, two ready.
                if len(workers) == 2 and _discoveries(openai_upstream) == 2:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(url + "/version") as r:
                            if r.status == 200:
                                break
                assert time.monotonic() < deadline, "workers did not start"
                await asyncio.sleep(0.1)
            # Until both workers have answered (request ids start with a per-process prefix).
            statuses: list[int] = []
            served: set[str] = set()
            while len(served) < 2 or len(statuses) < 12:
                assert len(statuses) < 80, f"one worker took every connection: {served}"
                async with http.post(
                    url + "/v1/chat/completions",
                    json={
                        "model": f"{backend}/gpt-4o-mini",
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                ) as r:
                    statuses.append(r.status)
                    served.add(r.headers["x-request-id"][:16])
        assert statuses.count(200) == 5, statuses
        assert statuses.count(429) == len(statuses) - 5, statuses
        posts = [r for r in openai_upstream.requests if r.method == "POST"]
        assert len(posts) == 5
        assert _discoveries(openai_upstream) == 2
    finally:
        _stop(proc)
