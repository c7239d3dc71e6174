"""The Backend protocol and the HTTP backend every wire-format kind builds on.

A backend turns one attempt into an upstream call. It offers two ways in:

* :meth:`Backend.forward` — the fast path: a body already in the backend's own dialect (the
  client's, with only ``model`` rewritten) goes out as bytes and comes back as bytes;
* :meth:`Backend.complete` / :meth:`Backend.stream` — canonical requests for every other case.

Backends with no wire dialect of their own (CLI agents, the in-process model) set
``dialect = None`` and implement only the canonical pair.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from relaygate import dialects
from relaygate.backends.native import NativeTransport
from relaygate.backends.oauth import OAuthOptions, OAuthTokenProvider
from relaygate.backends.transport import Timeouts, Transport, UpstreamResponse
from relaygate.canonical import (
    ErrorEvent,
    ErrorKind,
    GatewayError,
    ModelInfo,
    Request,
    Response,
    StreamEvent,
)
from relaygate.config import env_keys
from relaygate.dialects.sse import SSEDecoder
from relaygate.redact import redact, register_secret
from relaygate.routing.keys import KeyPool

log = logging.getLogger(__name__)

LOOP_GUARD_HEADER = "x-relaygate-loop-guard"


# ----------------------------------------------------------------------------- options


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelItem(_Strict):
    native_id: str = Field(min_length=1)
    canonical_id: str | None = None
    display_name: str | None = None
    context_window: int | None = None


class ModelsSpec(_Strict):
    source: Literal["inline", "file"] = "inline"
    path: str | None = None
    items: list[ModelItem] = Field(default_factory=list)

    def load(self) -> list[ModelItem]:
        if self.source == "inline":
            return self.items
        assert self.path is not None
        data = yaml.safe_load(Path(self.path).read_text())
        raw = data.get("items", data) if isinstance(data, dict) else data
        return [ModelItem.model_validate(item) for item in raw or []]


class TimeoutOptions(_Strict):
    connect: float | None = Field(None, gt=0)
    first_token: float | None = Field(None, gt=0)
    total: float | None = Field(None, gt=0)


class HttpOptions(_Strict):
    """Options shared by every HTTP kind (the ``config:`` block of a backend)."""

    backend_prefix: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    api_keys: list[str] = Field(default_factory=list)
    api_key_env_var_root: str | None = None
    credentials: dict[str, Any] | list[str] | None = None
    models: ModelsSpec | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: TimeoutOptions = Field(default_factory=TimeoutOptions)
    rate_limit_cooldown: float = Field(30.0, ge=0)
    auth_cooldown: float = Field(300.0, ge=0)
    default_max_tokens: int = Field(4096, gt=0)
    discover: bool = True
    oauth: OAuthOptions | None = None  # see relaygate.backends.oauth

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def resolve_keys(self, env: Mapping[str, str] | None = None) -> list[str]:
        """``credentials`` win, then ``api_keys`` / ``api_key``, then ``api_key_env_var_root``."""
        creds = self.credentials
        if isinstance(creds, list) and creds:
            return [str(k) for k in creds]
        if isinstance(creds, dict):
            if creds.get("api_keys"):
                return [str(k) for k in creds["api_keys"]]
            if creds.get("api_key"):
                return [str(creds["api_key"])]
        if self.api_keys:
            return list(self.api_keys)
        if self.api_key:
            return [self.api_key]
        if self.api_key_env_var_root:
            return env_keys(self.api_key_env_var_root, dict(env) if env is not None else None)
        return []


# ----------------------------------------------------------------------------- protocol


@dataclass(slots=True)
class CallContext:
    """What an attempt knows about the request it serves."""

    request_id: str
    timeouts: Timeouts = field(default_factory=Timeouts)
    loop_guard: str = ""
    client_headers: Mapping[str, str] = field(default_factory=dict)
    path: str = ""  # client path, for dialects with path-borne options


@dataclass(slots=True)
class RawReply:
    """A same-dialect upstream answer: ``body`` when not streaming, else ``chunks``."""

    status: int
    body: bytes | None
    chunks: AsyncIterator[bytes] | None
    response: UpstreamResponse | None = None

    def close(self) -> None:
        if self.response is not None:
            self.response.close()


@runtime_checkable
class Backend(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def prefix(self) -> str: ...

    @property
    def dialect(self) -> str | None:
        """The wire dialect for the fast path; None = canonical only."""

    async def list_models(self) -> list[ModelInfo]: ...

    async def forward(
        self, body: dict[str, Any], *, stream: bool, ctx: CallContext
    ) -> RawReply: ...

    async def complete(self, request: Request, native_model: str, ctx: CallContext) -> Response: ...

    def stream(
        self, request: Request, native_model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]: ...

    def describe(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


# ----------------------------------------------------------------------------- HTTP backend


class HttpBackend:
    """A backend that speaks one wire dialect over HTTP. Subclasses set the class constants
    and override :meth:`auth_headers`, :meth:`endpoint` and :meth:`discover` where the
    provider differs."""

    kind = "http"
    dialect: str | None = dialects.OPENAI_CHAT
    default_base_url: str | None = None
    models_path = "/models"

    def __init__(
        self,
        backend_id: str,
        options: HttpOptions,
        *,
        transport: Transport | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.id = backend_id
        self.options = options
        self.prefix = options.backend_prefix or backend_id
        base = options.base_url or self.default_base_url
        if not base:
            raise ValueError("base_url is required")
        self.base_url = base.rstrip("/")
        keys = options.resolve_keys(env)
        for key in keys:
            register_secret(key)
        self.keys = KeyPool(
            keys,
            backend=backend_id,
            rate_limit_cooldown=options.rate_limit_cooldown,
            auth_cooldown=options.auth_cooldown,
        )
        self.transport: Transport = transport or NativeTransport()
        self.token_provider: OAuthTokenProvider | None = None
        if options.oauth is not None:
            self.token_provider = OAuthTokenProvider(
                options.oauth, self.transport, backend=backend_id, env=env
            )
        self.wire = dialects.get(self.dialect) if self.dialect else None
        self.discovery_error: str | None = None
        self._models: list[ModelInfo] | None = None

    # ------------------------------------------------------------------ provider specifics

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def endpoint(self, native_model: str, stream: bool) -> str:
        return f"{self.base_url}/chat/completions"

    def build_body(self, request: Request, native_model: str) -> dict[str, Any]:
        assert self.wire is not None
        return self.wire.build_request(request, native_model)

    def model_of(self, body: Mapping[str, Any]) -> str:
        return str(body.get("model", ""))

    def parse_models(self, data: Any) -> list[tuple[str, str | None]]:
        """``(native_id, display_name)`` pairs from a discovery response."""
        items = data.get("data", []) if isinstance(data, dict) else []
        return [
            (str(m["id"]), m.get("display_name"))
            for m in items
            if isinstance(m, dict) and "id" in m
        ]

    # ------------------------------------------------------------------ plumbing

    def timeouts(self, ctx: CallContext) -> Timeouts:
        t = self.options.timeouts
        base = ctx.timeouts
        if t.connect is None and t.first_token is None and t.total is None:
            return base
        return Timeouts(
            connect=t.connect or base.connect,
            first_token=t.first_token or base.first_token,
            total=t.total or base.total,
        )

    def _headers(self, key: str, ctx: CallContext | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(self.auth_headers(key))
        headers.update(self.options.headers)
        if ctx is not None:
            if ctx.loop_guard:
                headers[LOOP_GUARD_HEADER] = ctx.loop_guard
            headers["x-request-id"] = ctx.request_id
        return headers

    def _acquire_key(self) -> tuple[int, str]:
        got = self.keys.acquire()
        if got is None:
            wait = self.keys.soonest_available()
            raise GatewayError(
                ErrorKind.RATE_LIMIT,
                f"every key of backend {self.id} is cooling down",
                retry_after=wait,
                backend=self.id,
            )
        return got

    async def _send(
        self, url: str, body: bytes, ctx: CallContext, *, stream: bool
    ) -> UpstreamResponse:
        index, key = self._acquire_key()
        if self.token_provider is not None:
            key = await self.token_provider.token()
        headers = self._headers(key, ctx)
        if stream:
            headers["Accept"] = "text/event-stream"
        try:
            resp = await self.transport.send(
                "POST", url, headers=headers, body=body, timeouts=self.timeouts(ctx)
            )
            if resp.status == 401 and self.token_provider is not None:
                # OAuth: the token was revoked or expired early — refresh and retry once.
                resp.close()
                key = await self.token_provider.invalidate(key)
                headers.update(self.auth_headers(key))
                resp = await self.transport.send(
                    "POST", url, headers=headers, body=body, timeouts=self.timeouts(ctx)
                )
        except GatewayError as err:
            err.backend = self.id
            err.message = redact(err.message)
            raise
        if resp.status >= 400:
            data = await resp.read()
            self.keys.report(index, resp.status, retry_after_seconds(resp.headers))
            raise self.error_from(resp.status, data, resp.headers)
        self.keys.report(index, resp.status)
        return resp

    def error_from(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        assert self.wire is not None
        err = self.wire.parse_error(status, body)
        err.message = redact(err.message)
        err.retry_after = retry_after_seconds(headers)
        err.backend = self.id
        return err

    # ------------------------------------------------------------------ Backend protocol

    async def forward(self, body: dict[str, Any], *, stream: bool, ctx: CallContext) -> RawReply:
        url = self.endpoint(self.model_of(body), stream)
        resp = await self._send(url, orjson.dumps(body), ctx, stream=stream)
        if stream:
            return RawReply(resp.status, None, resp.iter_chunks(), resp)
        return RawReply(resp.status, await resp.read(), None, resp)

    async def complete(self, request: Request, native_model: str, ctx: CallContext) -> Response:
        assert self.wire is not None
        request.stream = False
        body = self.build_body(request, native_model)
        resp = await self._send(
            self.endpoint(native_model, False), orjson.dumps(body), ctx, stream=False
        )
        data = await resp.read()
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.UPSTREAM, "upstream returned a body that is not JSON", backend=self.id
            ) from None
        try:
            response = self.wire.parse_response(obj)
        except GatewayError as err:
            err.backend = self.id
            err.message = redact(err.message)
            raise
        return response

    async def stream(
        self, request: Request, native_model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        async with contextlib.aclosing(self.stream_batches(request, native_model, ctx)) as batches:
            async for batch in batches:
                for event in batch:
                    yield event

    async def stream_batches(
        self, request: Request, native_model: str, ctx: CallContext
    ) -> AsyncGenerator[list[StreamEvent], None]:
        """:meth:`stream`, one list per upstream read: what arrived together can be rendered
        and sent to the client in one write (the translated relay uses this)."""
        assert self.wire is not None
        request.stream = True
        body = self.build_body(request, native_model)
        resp = await self._send(
            self.endpoint(native_model, True), orjson.dumps(body), ctx, stream=True
        )
        parser = self.wire.make_parser()
        decoder = SSEDecoder()
        finished = False
        try:
            async for chunk in resp.iter_chunks():
                batch: list[StreamEvent] = []
                for sse in decoder.feed(chunk):
                    for event in parser.feed(sse):
                        batch.append(event)
                        if isinstance(event, ErrorEvent):
                            event.error.backend = self.id
                            event.error.message = redact(event.error.message)
                            finished = True
                            break
                    if finished:
                        break
                if batch:
                    yield batch
                if finished:
                    return
            tail = [event for sse in decoder.flush() for event in parser.feed(sse)]
            tail.extend(parser.finish())
            if tail:
                yield tail
            finished = True
        finally:
            if finished:
                resp.release()
            else:
                resp.close()

    async def list_models(self) -> list[ModelInfo]:
        if self._models is None:
            self._models = await self._load_models()
        return self._models

    async def refresh_models(self) -> list[ModelInfo]:
        self._models = None
        return await self.list_models()

    async def _load_models(self) -> list[ModelInfo]:
        spec = self.options.models
        if spec is not None:
            return [
                ModelInfo(
                    id=item.canonical_id or f"{self.prefix}/{item.native_id}",
                    native_id=item.native_id,
                    backend=self.id,
                    display_name=item.display_name,
                    owned_by=self.prefix,
                    context_window=item.context_window,
                )
                for item in spec.load()
            ]
        if not self.options.discover:
            return []
        return [
            ModelInfo(
                id=f"{self.prefix}/{native}",
                native_id=native,
                backend=self.id,
                display_name=name,
                owned_by=self.prefix,
            )
            for native, name in await self.discover()
        ]

    async def discover(self) -> list[tuple[str, str | None]]:
        """Ask the provider for its models. Errors raise :class:`GatewayError`."""
        return self.parse_models(await self.get_json(self.base_url + self.models_path))

    async def get_json(self, url: str) -> Any:
        """``GET url`` with this backend's auth and short timeouts (discovery, probes): the
        decoded JSON, or the provider's error as a :class:`GatewayError`."""
        got = self.keys.acquire() or (-1, "")
        key = got[1]
        if self.token_provider is not None:
            key = await self.token_provider.token()
        resp = await self.transport.send(
            "GET",
            url,
            headers=self._headers(key, None),
            body=None,
            timeouts=Timeouts(connect=5.0, first_token=15.0, total=20.0),
        )
        data = await resp.read()
        if resp.status >= 400:
            raise self.error_from(resp.status, data, resp.headers)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.UPSTREAM, "model list is not JSON", backend=self.id
            ) from None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "prefix": self.prefix,
            "dialect": self.dialect,
            "base_url": self.base_url,
            "keys": self.keys.snapshot(),
            "discovery_error": self.discovery_error,
        }

    async def aclose(self) -> None:
        await self.transport.aclose()
