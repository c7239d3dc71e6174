"""OpenAI Chat Completions backends: ``openai``, ``custom-openai-legacy-compatible`` and the
OpenAI-compatible providers listed as data rows in :mod:`relaygate.backends.compat`."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate import dialects
from relaygate.backends.base import CallContext, HttpBackend
from relaygate.canonical import Request
from relaygate.dialects import openai_chat


class OpenAIChatBackend(HttpBackend):
    """``POST <base_url>/chat/completions`` with bearer auth; discovery at ``<base_url>/models``."""

    kind = "custom-openai-legacy-compatible"
    dialect = dialects.OPENAI_CHAT
    models_path = "/models"
    # OpenAI's own API wants max_completion_tokens; most compatible servers know max_tokens.
    max_tokens_field = "max_tokens"

    async def embeddings(self, body: dict[str, Any], ctx: CallContext) -> bytes:
        """``POST <base_url>/embeddings`` as the client sent it (model already rewritten)."""
        resp = await self._send(
            f"{self.base_url}/embeddings", orjson.dumps(body), ctx, stream=False
        )
        return await resp.read()

    def build_body(self, request: Request, native_model: str) -> dict[str, Any]:
        return openai_chat.build_request(
            request, native_model, max_tokens_field=self.max_tokens_field
        )


class OpenAIBackend(OpenAIChatBackend):
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    max_tokens_field = "max_completion_tokens"
