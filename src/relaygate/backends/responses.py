"""OpenAI Responses backends.

* ``custom-openai-responses-compatible``: ``POST <base_url>/responses`` with bearer auth,
  discovery at ``<base_url>/models``. Such servers usually keep no conversation state, so
  relaygate expands ``previous_response_id`` itself (see :mod:`relaygate.server.responses_state`)
  unless ``config.stores_responses: true`` says the server does.
* :class:`OpenAINativeBackend` (kind ``openai``, registered in :mod:`relaygate.backends.builtin`):
  OpenAI itself speaks both Chat Completions and Responses, so Responses clients take the byte
  fast path to ``/responses`` (reasoning items, hosted tools and server-side state survive),
  while every other dialect reaches it through Chat Completions.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field

from relaygate import dialects
from relaygate.backends.base import Backend, CallContext, HttpBackend, HttpOptions, RawReply
from relaygate.backends.openai import OpenAIBackend
from relaygate.backends.registry import BackendKind, BuildContext

RESPONSES_PATH = "/v1/responses"


class ResponsesOptions(HttpOptions):
    stores_responses: bool = Field(
        False,
        description="The server keeps responses for previous_response_id itself; pass it through.",
    )


class ResponsesBackend(HttpBackend):
    kind = "custom-openai-responses-compatible"
    dialect = dialects.OPENAI_RESPONSES
    models_path = "/models"

    @property
    def stores_responses(self) -> bool:
        return bool(getattr(self.options, "stores_responses", False))

    def endpoint(self, native_model: str, stream: bool) -> str:
        return f"{self.base_url}/responses"


class OpenAINativeBackend(OpenAIBackend):
    """``openai``: Chat Completions for translated requests, Responses on the fast path."""

    also_speaks: tuple[str, ...] = (dialects.OPENAI_RESPONSES,)
    stores_responses = True

    async def forward(self, body: dict[str, Any], *, stream: bool, ctx: CallContext) -> RawReply:
        if not ctx.path.startswith(RESPONSES_PATH):
            return await super().forward(body, stream=stream, ctx=ctx)
        resp = await self._send(
            f"{self.base_url}/responses", orjson.dumps(body), ctx, stream=stream
        )
        if stream:
            return RawReply(resp.status, None, resp.iter_chunks(), resp)
        return RawReply(resp.status, await resp.read(), None, resp)


def _custom(backend_id: str, options: Any, ctx: BuildContext) -> Backend:
    return ResponsesBackend(backend_id, options, transport=ctx.transport, env=ctx.env)


def register_kinds(register: Any) -> None:
    register(
        BackendKind(
            "custom-openai-responses-compatible",
            _custom,
            options=ResponsesOptions,
            description="Any OpenAI Responses-compatible server",
            reserved_prefix=False,
            requires_base_url=True,
            custom_prefix=True,
        )
    )
