"""A request leaves no cyclic garbage: everything it allocates is freed by reference counting.

Garbage in cycles is what makes the cycle collector run (and walk every young object) on the
hot path; one cancelled watcher task per request (its CancelledError's traceback tying the
task, its frames and uvicorn's request cycle together) once cost ~8 % of the non-stream path.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.conftest import openai_backend, serve_gateway

import relaygate
from relaygate.server.app import GC_GEN0_THRESHOLD, tune_gc
from relaygate.testing import OpenAIEmulator, Reply

PACKAGE = str(Path(relaygate.__file__).parent)
TESTING = str(Path(relaygate.__file__).parent / "testing")
MASTER = "rg-test-master-key-0123456789"


def _ours(obj: Any) -> bool:
    """Server-side objects: relaygate's (its emulators aside) and uvicorn's."""
    code = getattr(obj, "cr_code", None) or getattr(obj, "ag_code", None)
    if code is None and isinstance(obj, types.FrameType):
        code = obj.f_code
    if code is None and isinstance(obj, types.FunctionType):
        code = obj.__code__
    if code is not None:
        name = code.co_filename
        return name.startswith(PACKAGE) and not name.startswith(TESTING)
    module = type(obj).__module__ or ""
    return (module.startswith("relaygate") and not module.startswith("relaygate.testing")) or (
        module.startswith("uvicorn")
    )


@contextmanager
def cyclic_garbage() -> Iterator[list[Any]]:
    """The server-side objects only the cycle collector would have freed during the block."""
    found: list[Any] = []
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(o for o in gc.garbage if _ours(o))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def config(upstream: OpenAIEmulator) -> dict[str, Any]:
    return {
        "server": {"auth": {"enabled": True, "api_key_env": "RG_GC_MASTER"}},
        "plugins": {"backends": [openai_backend(upstream)]},
        "retry": {"attempts": 1},
    }


CHAT = {"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CASES = {
    "non-stream": ("/v1/chat/completions", CHAT, {"Authorization": f"Bearer {MASTER}"}),
    "stream": (
        "/v1/chat/completions",
        {**CHAT, "stream": True},
        {"Authorization": f"Bearer {MASTER}"},
    ),
    # Anthropic client → OpenAI upstream: the canonical translation path.
    "cross-dialect stream": (
        "/v1/messages",
        {**CHAT, "max_tokens": 32, "stream": True},
        {"x-api-key": MASTER, "anthropic-version": "2023-06-01"},
    ),
    "auth refused": ("/v1/chat/completions", CHAT, {"Authorization": "Bearer wrong-key"}),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_requests_leave_no_cyclic_garbage(
    case: str, openai_upstream: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RG_GC_MASTER", MASTER)
    path, body, headers = CASES[case]
    openai_upstream.script(*[Reply(text="hello there") for _ in range(12)])
    async with serve_gateway(config(openai_upstream)) as gw, aiohttp.ClientSession() as http:

        async def call() -> None:
            async with http.post(gw.url + path, json=body, headers=headers) as r:
                await r.read()
                assert (r.status == 401) == (case == "auth refused")

        await call()  # warm-up: lazy imports, caches, pooled connections
        with cyclic_garbage() as garbage:
            for _ in range(10):
                await call()
    kinds = sorted({type(o).__qualname__ for o in garbage})
    assert not garbage, f"{len(garbage)} objects in reference cycles: {kinds}"


def test_tune_gc_raises_gen0_threshold_and_freezes() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == max(before[0], GC_GEN0_THRESHOLD)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
