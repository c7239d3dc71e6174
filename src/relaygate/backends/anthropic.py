"""Anthropic Messages backends: ``anthropic`` and ``custom-anthropic-compatible``.

``POST <base_url>/v1/messages`` with ``x-api-key`` and ``anthropic-version``; discovery at
``<base_url>/v1/models`` (paginated with ``after_id``). ``max_tokens`` is mandatory upstream, so
requests from dialects where it is optional get ``config.default_max_tokens``.

On the fast path (an Anthropic client), the client's ``anthropic-beta`` header travels with the
body: fields such as Claude Code's ``context_management`` are only accepted under their beta.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate import dialects
from relaygate.backends.base import Backend, CallContext, HttpBackend
from relaygate.backends.registry import BackendKind, BuildContext
from relaygate.canonical import Request
from relaygate.dialects import anthropic as wire

ANTHROPIC_VERSION = "2023-06-01"
_PAGE_LIMIT = 1000
_MAX_PAGES = 20  # a provider that always says has_more must not loop forever


def _api_root(base_url: str) -> str:
    """Accept ``https://api.anthropic.com`` and ``https://api.anthropic.com/v1`` alike."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


class AnthropicBackend(HttpBackend):
    kind = "anthropic"
    dialect = dialects.ANTHROPIC
    default_base_url: str | None = "https://api.anthropic.com"
    models_path = "/v1/models"

    def auth_headers(self, key: str) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def endpoint(self, native_model: str, stream: bool) -> str:
        return f"{_api_root(self.base_url)}/v1/messages"

    def build_body(self, request: Request, native_model: str) -> dict[str, Any]:
        return wire.build_request(
            request, native_model, default_max_tokens=self.options.default_max_tokens
        )

    def _headers(self, key: str, ctx: CallContext | None) -> dict[str, str]:
        headers = super()._headers(key, ctx)
        beta = _client_beta(ctx) if ctx is not None else None
        if beta is not None:
            headers["anthropic-beta"] = beta
        return headers

    async def count_tokens(self, body: dict[str, Any], ctx: CallContext) -> bytes:
        """``POST /v1/messages/count_tokens`` upstream; ``body`` is Anthropic-shaped."""
        url = f"{_api_root(self.base_url)}/v1/messages/count_tokens"
        resp = await self._send(url, orjson.dumps(body), ctx, stream=False)
        return await resp.read()

    async def discover(self) -> list[tuple[str, str | None]]:
        found: list[tuple[str, str | None]] = []
        after: str | None = None
        for _ in range(_MAX_PAGES):
            url = f"{_api_root(self.base_url)}/v1/models?limit={_PAGE_LIMIT}"
            if after:
                url += f"&after_id={after}"
            page = await self.get_json(url)
            found.extend(self.parse_models(page))
            if not (isinstance(page, dict) and page.get("has_more") and page.get("last_id")):
                break
            after = str(page["last_id"])
        return found


class CustomAnthropicBackend(AnthropicBackend):
    kind = "custom-anthropic-compatible"
    default_base_url = None


def _client_beta(ctx: CallContext) -> str | None:
    for name, value in ctx.client_headers.items():
        if name.lower() == "anthropic-beta" and value:
            return value
    return None


def _anthropic(backend_id: str, options: Any, ctx: BuildContext) -> Backend:
    return AnthropicBackend(backend_id, options, transport=ctx.transport, env=ctx.env)


def _custom(backend_id: str, options: Any, ctx: BuildContext) -> Backend:
    return CustomAnthropicBackend(backend_id, options, transport=ctx.transport, env=ctx.env)


def register_kinds(register: Any) -> None:
    register(
        BackendKind(
            "anthropic",
            _anthropic,
            description="Anthropic (Messages API)",
            env_key="ANTHROPIC_API_KEY",
            default_base_url=AnthropicBackend.default_base_url,
        )
    )
    register(
        BackendKind(
            "custom-anthropic-compatible",
            _custom,
            description="Any Anthropic Messages-compatible server",
            reserved_prefix=False,
            requires_base_url=True,
            custom_prefix=True,
        )
    )
