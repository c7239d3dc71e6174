"""Schemathesis against the admin API's own OpenAPI document (``/api/openapi.json``): auth on,
the master key sent; no request may end in a 5xx, and every error uses the admin envelope
``{"success": false, "error": {"code", "message"}}`` with one of DESIGN.md's codes.

A real gateway (``serve_gateway``) runs on a background event loop, because schemathesis calls
it synchronously through ``requests``; an OpenAI echo emulator is its only upstream, and every
``base_url`` schemathesis invents is pointed there (no request leaves the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from tests.conftest import serve_gateway

from relaygate.server import admin
from relaygate.testing import OpenAIEmulator

KEY = "sk-fuzz-upstream-0123456789"
MASTER = "rg-fuzz-admin-master-0123456789"
AUTH = {"authorization": f"Bearer {MASTER}"}
EXAMPLES = 10
CODES = {
    "INVALID_REQUEST",
    "PROVIDER_NOT_FOUND",
    "UNAUTHORIZED",
    "METHOD_NOT_ALLOWED",
    "GENERATION_ERROR",
    "INTERNAL_ERROR",
}


class Server:
    """``serve_gateway`` and an emulator on an event loop of their own thread."""

    def __init__(self, db: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = contextlib.AsyncExitStack()
        self.url, self.upstream = self._run(self._start(db))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _start(self, db: str) -> tuple[str, str]:
        upstream = await self.stack.enter_async_context(OpenAIEmulator(api_key=KEY))
        config = {
            "server": {"auth": {"enabled": True}, "access_log": False},
            "plugins": {
                "backends": [
                    {
                        "id": "emu",
                        "kind": "custom-openai-legacy-compatible",
                        "config": {
                            "backend_prefix": "emu",
                            "base_url": upstream.base_url + "/v1",
                            "api_key": KEY,
                            "models": {"items": [{"native_id": "gpt-4o-mini"}]},
                        },
                    }
                ]
            },
            "default_model": "emu/gpt-4o-mini",
            "timeouts": {"connect": 1, "first_token": 5, "total": 10},
            "retry": {"attempts": 1},
            "storage": {"url": db},
        }
        gw = await self.stack.enter_async_context(
            serve_gateway(config, env={"RELAYGATE_API_KEY": MASTER})
        )
        return gw.url, upstream.base_url + "/v1"

    def close(self) -> None:
        self._run(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(f"sqlite:///{Path(tmp_path_factory.mktemp('admin')) / 'admin.db'}")
    try:
        yield srv
    finally:
        srv.close()


def admin_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Errors are ``{"success": false, "error": {"code", "message"}}`` with a known code."""
    if response.status_code < 400:
        return None
    if "text/event-stream" in response.headers.get("content-type", [""])[0]:
        return None
    body = json.loads(response.content)
    assert body.get("success") is False, body
    error = body["error"]
    assert error["code"] in CODES, body
    assert isinstance(error["message"], str) and error["message"], body
    assert MASTER not in response.text and KEY not in response.text
    return None


def _local(body: Any, upstream: str) -> None:
    """Point any upstream address schemathesis made up at the emulator."""
    if not isinstance(body, dict):
        return
    if "base_url" in body or "name" in body:
        body["base_url"] = upstream
    config = body.get("config")
    if isinstance(config, dict):
        config["base_url"] = upstream


# The document is fetched from the running server; the ids come from the same function.
OPERATIONS = [f"{method.upper()} {path}" for method, path, *_ in admin._ENDPOINTS]


@pytest.fixture(scope="module")
def admin_schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(server.url + "/api/openapi.json", headers=AUTH)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_admin_api(server: Server, admin_schema: Any, label: str, mode: GenerationMode) -> None:
    operation = admin_schema[label.split(" ", 1)[1]][label.split(" ", 1)[0]]

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        _local(case.body, server.upstream)
        case.call_and_validate(
            base_url=server.url,
            headers=AUTH,
            checks=[not_a_server_error, admin_envelope],
            timeout=15,
        )

    run()


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", "/api/nope", AUTH, 404, "INVALID_REQUEST"),
        ("DELETE", "/api/providers", AUTH, 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/api/providers", {}, 401, "UNAUTHORIZED"),
        ("GET", "/api/providers", {"authorization": "Bearer wrong"}, 401, "UNAUTHORIZED"),
        ("GET", "/api/providers/missing", AUTH, 404, "PROVIDER_NOT_FOUND"),
        ("DELETE", "/api/keys/missing", AUTH, 404, "INVALID_REQUEST"),
    ],
)
def test_outside_the_document(
    server: Server, method: str, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    """Paths, methods and callers the document does not describe get the same envelope."""
    import requests

    r = requests.request(method, server.url + path, headers=headers, timeout=15)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert body["error"]["code"] in CODES
