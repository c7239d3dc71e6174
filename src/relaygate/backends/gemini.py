"""The ``gemini`` backend: Google's Gemini Developer API.

The model lives in the URL, not the body: ``POST <root>/models/{model}:generateContent``, and
``:streamGenerateContent?alt=sse`` for streams (SSE, one ``GenerateContentResponse`` per event).
The key travels in ``x-goog-api-key`` (never in the query string, where proxies log it).
Discovery reads ``<root>/models`` (paginated with ``pageToken``). ``<root>`` is the base URL
with its API version: ``https://generativelanguage.googleapis.com/v1beta`` by default; a base URL
given without a version gets ``/v1beta``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from relaygate import dialects
from relaygate.backends.base import Backend, CallContext, HttpBackend, RawReply
from relaygate.backends.registry import BackendKind, BuildContext
from relaygate.canonical import ErrorKind, GatewayError

DEFAULT_VERSION = "/v1beta"
_MAX_PAGES = 20
ARRAY_MODE = "alt=json"  # in CallContext.path: the client asked for a JSON-array stream


def api_root(base_url: str) -> str:
    """``…/v1beta`` and ``…/v1`` are kept; a bare host gets ``/v1beta``."""
    if base_url.endswith(("/v1beta", "/v1", "/v1alpha")):
        return base_url
    return base_url + DEFAULT_VERSION


def model_url(root: str, native_model: str, method: str) -> str:
    # A native id may contain '/' (tuned models, proxies): keep it, quote the rest.
    return f"{root}/models/{quote(native_model, safe='/-._~')}:{method}"


class GeminiBackend(HttpBackend):
    kind = "gemini"
    dialect = dialects.GEMINI
    default_base_url: str | None = "https://generativelanguage.googleapis.com"

    @property
    def root(self) -> str:
        return api_root(self.base_url)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key} if key else {}

    def endpoint(self, native_model: str, stream: bool) -> str:
        if stream:
            return model_url(self.root, native_model, "streamGenerateContent") + "?alt=sse"
        return model_url(self.root, native_model, "generateContent")

    async def forward(self, body: dict[str, Any], *, stream: bool, ctx: CallContext) -> RawReply:
        # attempt.py puts the target model in the body; Gemini wants it in the path only.
        body = dict(body)
        native = str(body.pop("model", ""))
        if not native:
            raise GatewayError(ErrorKind.INVALID_REQUEST, "no model to call", backend=self.id)
        url = self.endpoint(native, stream)
        if stream and ARRAY_MODE in ctx.path:
            url = model_url(self.root, native, "streamGenerateContent")
        resp = await self._send(url, orjson.dumps(body), ctx, stream=stream)
        if stream:
            return RawReply(resp.status, None, resp.iter_chunks(), resp)
        return RawReply(resp.status, await resp.read(), None, resp)

    async def count_tokens(
        self, native_model: str, body: dict[str, Any], ctx: CallContext
    ) -> bytes:
        """``:countTokens`` upstream; ``body`` is Gemini-shaped (``contents`` …)."""
        url = model_url(self.root, native_model, "countTokens")
        resp = await self._send(url, orjson.dumps(body), ctx, stream=False)
        return await resp.read()

    def parse_models(self, data: Any) -> list[tuple[str, str | None]]:
        items = data.get("models", []) if isinstance(data, dict) else []
        out: list[tuple[str, str | None]] = []
        for m in items:
            if not isinstance(m, dict) or not isinstance(m.get("name"), str):
                continue
            methods = m.get("supportedGenerationMethods")
            if isinstance(methods, list) and "generateContent" not in methods:
                continue  # embedding-only and other models cannot serve a chat
            name = m["name"]
            native = name[len("models/") :] if name.startswith("models/") else name
            out.append((native, m.get("displayName")))
        return out

    async def discover(self) -> list[tuple[str, str | None]]:
        found: list[tuple[str, str | None]] = []
        token: str | None = None
        for _ in range(_MAX_PAGES):
            url = f"{self.root}/models?pageSize=1000"
            if token:
                url += f"&pageToken={quote(token)}"
            page = await self.get_json(url)
            found.extend(self.parse_models(page))
            token = page.get("nextPageToken") if isinstance(page, dict) else None
            if not token:
                break
        return found


def _gemini(backend_id: str, options: Any, ctx: BuildContext) -> Backend:
    return GeminiBackend(backend_id, options, transport=ctx.transport, env=ctx.env)


def register_kinds(register: Any) -> None:
    register(
        BackendKind(
            "gemini",
            _gemini,
            description="Google Gemini (Developer API)",
            env_key="GEMINI_API_KEY",
            default_base_url=GeminiBackend.default_base_url,
        )
    )
