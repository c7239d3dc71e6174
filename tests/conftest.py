"""Shared fixtures: upstream emulators and a real relaygate server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvicorn

from relaygate.config import parse_config
from relaygate.gateway import Gateway, build_gateway
from relaygate.server.app import RelayApp, build_asgi
from relaygate.server.protocol import uvicorn_options
from relaygate.testing import OpenAIEmulator


class RunningGateway:
    def __init__(self, gateway: Gateway, inner: RelayApp, port: int) -> None:
        self.gateway = gateway
        self.app = inner
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve_gateway(
    config: dict[str, Any], env: dict[str, str] | None = None
) -> AsyncIterator[RunningGateway]:
    """Validate ``config``, build the gateway and run it with uvicorn on a free loopback port."""
    cfg = parse_config(config, env=env)
    gateway = build_gateway(cfg, env=env)
    asgi, inner = build_asgi(gateway)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            asgi,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
            **uvicorn_options(),
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield RunningGateway(gateway, inner, port)
    finally:
        server.should_exit = True
        await task
        sock.close()


def openai_backend(
    upstream: OpenAIEmulator, backend_id: str = "emu", **extra: Any
) -> dict[str, Any]:
    return {
        "id": backend_id,
        "kind": "custom-openai-legacy-compatible",
        "config": {
            "backend_prefix": backend_id,
            "base_url": upstream.base_url + "/v1",
            "api_key": "sk-test-key-123456",
            **extra,
        },
    }


@pytest.fixture
async def openai_upstream() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator(api_key="sk-test-key-123456") as upstream:
        yield upstream


GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[RunningGateway]]


@pytest.fixture
def gateway_factory() -> GatewayFactory:
    return serve_gateway


# In CI every environment-dependent test must run: a skip for a missing service, model, CLI or
# spec or browser is a failure there (RELAYGATE_CI=1, set by .ci/run). Locally such tests skip with a
# message saying what to start or install.
_CI_REQUIRED = (
    "PostgreSQL is not reachable",
    "Redis is not reachable",
    "OpenAPI spec not found",
    "local model not installed",
    "CLI not installed",
    "relaygate[otel]",
    "Chromium is not installed",
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("RELAYGATE_CI") == "1":
        reason = (
            str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        )
        if any(marker in reason for marker in _CI_REQUIRED):
            report.outcome = "failed"
            report.longrepr = f"required in CI but skipped: {reason}"
