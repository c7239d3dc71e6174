"""Four upstream emulators (one per wire dialect) and a gateway config with a backend each."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from relaygate.testing import Emulator, OpenAIEmulator
from relaygate.testing.anthropic_emulator import AnthropicEmulator
from relaygate.testing.gemini_emulator import GeminiEmulator
from relaygate.testing.responses_emulator import ResponsesEmulator

KEY = "sk-upstream-secret-0123456789"

# backend prefix → (dialect, model served)
MODELS = {
    "oai": ("openai-chat", "oai/gpt-4o-mini"),
    "ant": ("anthropic", "ant/claude-sonnet-4-5"),
    "rsp": ("openai-responses", "rsp/gpt-5-mini"),
    "gem": ("gemini", "gem/gemini-2.5-flash"),
}


@dataclass
class Upstreams:
    oai: OpenAIEmulator
    ant: AnthropicEmulator
    rsp: ResponsesEmulator
    gem: GeminiEmulator

    def by_prefix(self, prefix: str) -> Emulator:
        emulator: Emulator = getattr(self, prefix)
        return emulator

    def config(self, **extra: Any) -> dict[str, Any]:
        backends = [
            {
                "id": "oai",
                "kind": "custom-openai-legacy-compatible",
                "config": {
                    "backend_prefix": "oai",
                    "base_url": self.oai.base_url + "/v1",
                    "api_key": KEY,
                },
            },
            {
                "id": "ant",
                "kind": "custom-anthropic-compatible",
                "config": {"backend_prefix": "ant", "base_url": self.ant.base_url, "api_key": KEY},
            },
            {
                "id": "rsp",
                "kind": "custom-openai-responses-compatible",
                "config": {
                    "backend_prefix": "rsp",
                    "base_url": self.rsp.base_url + "/v1",
                    "api_key": KEY,
                },
            },
            {
                "id": "gem",
                "kind": "gemini",
                "config": {"backend_prefix": "gem", "base_url": self.gem.base_url, "api_key": KEY},
            },
        ]
        return {"plugins": {"backends": backends}, **extra}


@contextlib.asynccontextmanager
async def upstreams() -> AsyncIterator[Upstreams]:
    async with (
        OpenAIEmulator(api_key=KEY) as oai,
        AnthropicEmulator(api_key=KEY) as ant,
        ResponsesEmulator(api_key=KEY) as rsp,
        GeminiEmulator(api_key=KEY) as gem,
    ):
        yield Upstreams(oai, ant, rsp, gem)  # type: ignore[arg-type]
