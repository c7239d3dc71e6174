"""Opt-in: drive the real CLIs (RELAYGATE_REAL_CLI=1 and the binary logged in on PATH)."""

from __future__ import annotations

import os
import shutil

import pytest

from relaygate.backends.base import CallContext
from relaygate.backends.cli import (
    ClaudeCliBackend,
    CliBackend,
    CliOptions,
    CodexCliBackend,
    GeminiCliBackend,
)
from relaygate.canonical import Message, MessageStop, Request, Role, TextPart

pytestmark = pytest.mark.realcli


@pytest.mark.parametrize("cls", [ClaudeCliBackend, GeminiCliBackend, CodexCliBackend])
async def test_real_cli_answers(cls: type[CliBackend]) -> None:
    if os.environ.get("RELAYGATE_REAL_CLI") != "1":
        pytest.skip("set RELAYGATE_REAL_CLI=1 to drive the real agent CLIs")
    if shutil.which(cls.spec.binary) is None:
        pytest.skip(f"{cls.spec.binary} is not installed (npm install -g {cls.spec.npm_package})")
    backend = cls("real", CliOptions(timeout=180))
    request = Request(
        model="x", messages=[Message(Role.USER, [TextPart("Reply with the single word: pong")])]
    )
    response = await backend.complete(request, "", CallContext(request_id="real"))
    assert "pong" in response.text().lower()
    events = [e async for e in backend.stream(request, "", CallContext(request_id="real"))]
    assert isinstance(events[-1], MessageStop)
