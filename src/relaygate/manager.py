"""ProviderManager: run-time provider operations, in-process (ClosedPaw's manager) and behind
the admin API.

Providers from the config file are read-only here; providers registered at run time are built
with the same backend kinds, persisted in the store (their key encrypted by the vault) and
merged into the running :class:`~relaygate.gateway.Gateway`, which is swapped atomically::

    manager = ProviderManager.from_config(parse_config(yaml.safe_load(text)))
    await manager.register(ProviderSpec(name="local", base_url="http://127.0.0.1:8000/v1"))
    reply = await manager.chat([{"role": "user", "content": "hi"}], provider="local")
    await manager.close_all()
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from relaygate.backends.base import Backend, CallContext
from relaygate.backends.registry import BuildContext
from relaygate.backends.transport import Transport
from relaygate.canonical import (
    GatewayError,
    Message,
    Request,
    Response,
    Role,
    StreamEvent,
    TextPart,
)
from relaygate.config import Config, pydantic_problems
from relaygate.gateway import Gateway, build_gateway
from relaygate.netguard import UnsafeURL, check_base_url
from relaygate.redact import redact, register_secret
from relaygate.routing.router import Router, split_selector
from relaygate.store.db import Store, StoreUnavailable
from relaygate.store.vault import Vault, VaultUnavailable

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


class ProviderSpec(BaseModel):
    """A provider registered at run time (``POST /api/providers/register``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    kind: str = Field("custom-openai-legacy-compatible", alias="type")
    base_url: str | None = None
    api_key: str | None = None
    models: list[str] = Field(default_factory=list)
    default_model: str | None = None
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use 1-64 letters, digits, '-' or '_' (no '/' or ':')")
        return value


class ProviderUpdate(BaseModel):
    """``PUT /api/providers/{name}``: fields to change."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | None = None
    api_key: str | None = None
    models: list[str] | None = None
    default_model: str | None = None
    enabled: bool | None = None


class ProviderError(Exception):
    """An operation refused; ``code`` is the admin API's error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def spec_problems(exc: ValidationError, data: Any) -> str:
    return "; ".join(pydantic_problems(exc, data))


class Holder(Protocol):
    """Whatever runs the gateway: a :class:`RelayApp`, or the manager's own holder."""

    gateway: Gateway

    def swap(self, gateway: Gateway) -> None: ...


class _OwnHolder:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def swap(self, gateway: Gateway) -> None:
        self.gateway = gateway


@dataclass(slots=True)
class Registered:
    spec: ProviderSpec  # api_key removed
    backend: Backend
    has_key: bool


class ProviderManager:
    def __init__(
        self,
        holder: Holder,
        *,
        store: Store | None = None,
        vault: Vault | None = None,
        transport: Transport | None = None,
        env: Mapping[str, str] | None = None,
        loop_guard: Callable[[], str] = lambda: "",
    ) -> None:
        self.holder = holder
        self.store = store
        self.vault = vault or Vault.from_env(env)
        self.transport = transport
        self.env = env
        self.loop_guard = loop_guard
        self.runtime: dict[str, Registered] = {}
        self.default: str | None = None
        self.last_health: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()
        self._retiring: list[Backend] = []

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        transport: Transport | None = None,
        store: Store | None = None,
    ) -> ProviderManager:
        gateway = build_gateway(config, env=env, transport=transport)
        return cls(_OwnHolder(gateway), store=store, transport=transport, env=env)

    @property
    def gateway(self) -> Gateway:
        return self.holder.gateway

    # ------------------------------------------------------------------ listing

    def names(self) -> list[str]:
        return list(self.gateway.backends)

    def get(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (or the default provider)."""
        gw = self.gateway
        name = name or self.default_name()
        backend = gw.backends.get(name) if name else None
        if backend is None:
            known = ", ".join(sorted(gw.backends)) or "(none)"
            raise ProviderError(
                "PROVIDER_NOT_FOUND", f"No provider named {name!r}; known: {known}.", 404
            )
        return backend

    def default_name(self) -> str | None:
        if self.default and self.default in self.gateway.backends:
            return self.default
        return next(iter(self.gateway.backends), None)

    def describe(self, name: str) -> dict[str, Any]:
        backend = self.get(name)
        gw = self.gateway
        reg = self.runtime.get(name)
        entry = next((b for b in gw.config.plugins.backends if b.id == name), None)
        info = backend.describe()
        health = self.last_health.get(name)
        return {
            "name": name,
            "type": backend.kind,
            "description": gw.registry.kinds[backend.kind].description
            if backend.kind in gw.registry.kinds
            else "",
            "prefix": backend.prefix,
            "base_url": info.get("base_url"),
            "enabled": reg.spec.enabled if reg else (entry.enabled if entry else True),
            "source": "runtime" if reg else "config",
            "default": name == self.default_name(),
            "default_model": reg.spec.default_model if reg else None,
            "has_key": bool(reg.has_key) if reg else bool(info.get("keys")),
            "keys": info.get("keys", []),
            "healthy": health["status"] == "healthy" if health else None,
            "discovery_error": gw.discovery_errors.get(name),
            "models": [m.id for m in gw.models if m.backend == name],
        }

    def get_status(self) -> dict[str, Any]:
        return {
            "default": self.default_name(),
            "providers": {name: self.describe(name) for name in self.gateway.backends},
        }

    async def list_models(self, name: str) -> list[str]:
        backend = self.get(name)
        try:
            models = await backend.list_models()
        except GatewayError as err:
            raise ProviderError("GENERATION_ERROR", redact(err.message), 502) from None
        return [m.id for m in models]

    async def list_all_models(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in self.gateway.backends:
            try:
                out[name] = await self.list_models(name)
            except ProviderError:
                out[name] = []
        return out

    # ------------------------------------------------------------------ health

    async def health_check(self, name: str) -> dict[str, Any]:
        backend = self.get(name)
        started = time.monotonic()
        try:
            discover = getattr(backend, "discover", None)
            if discover is not None:
                await discover()
            else:
                await backend.list_models()
            result: dict[str, Any] = {
                "status": "healthy",
                "message": "Provider is responding normally",
            }
        except (GatewayError, OSError, ValueError) as exc:
            message = exc.message if isinstance(exc, GatewayError) else str(exc)
            result = {"status": "unhealthy", "message": redact(message)}
        result["latency"] = round((time.monotonic() - started) * 1000, 1)
        result["checked_at"] = time.time()
        self.last_health[name] = result
        return result

    async def health_check_all(self) -> dict[str, dict[str, Any]]:
        names = list(self.gateway.backends)
        results = await asyncio.gather(*(self.health_check(n) for n in names))
        return dict(zip(names, results, strict=True))

    # ------------------------------------------------------------------ generation

    def _request(
        self,
        messages: list[dict[str, Any]],
        model: str | None,
        provider: str | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> tuple[Backend, str, Request]:
        gw = self.gateway
        backend: Backend | None = None
        native = None
        if model and not provider:
            parts = split_selector(model)
            if parts is not None and parts[0] in gw.router.by_prefix:
                backend, native = gw.router.by_prefix[parts[0]], parts[1]
            elif model in gw.router.routes or model in gw.router.aliases:
                target = gw.router.resolve(model).targets[0]
                backend, native = target.backend, target.native_id
        if backend is None:
            backend = self.get(provider)
            native = model
            if native and "/" in native and native.split("/", 1)[0] == backend.prefix:
                native = native.split("/", 1)[1]
        if not native:
            reg = self.runtime.get(backend.id)
            native = reg.spec.default_model if reg and reg.spec.default_model else None
            if native is None:
                first = next((m for m in gw.models if m.backend == backend.id), None)
                if first is None:
                    raise ProviderError(
                        "INVALID_REQUEST",
                        f"No model given and provider {backend.id!r} has no known models; pass 'model'.",
                    )
                native = first.native_id
        system: list[TextPart] = []
        converted: list[Message] = []
        for i, m in enumerate(messages):
            role = m.get("role")
            content = m.get("content")
            if not isinstance(content, str):
                raise ProviderError("INVALID_REQUEST", f"messages[{i}].content must be a string.")
            if role == "system":
                system.append(TextPart(content))
            elif role in ("user", "assistant"):
                converted.append(Message(Role(role), [TextPart(content)]))
            else:
                raise ProviderError(
                    "INVALID_REQUEST",
                    f"messages[{i}].role must be system, user or assistant, not {role!r}.",
                )
        if not converted:
            raise ProviderError("INVALID_REQUEST", "Give a prompt or at least one user message.")
        request = Request(
            model=native,
            messages=converted,
            system=system,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        return backend, native, request

    def _ctx(self) -> CallContext:
        return CallContext(uuid.uuid4().hex, self.gateway.timeouts, self.loop_guard())

    def prepare(
        self,
        messages: list[dict[str, Any]],
        provider: str | None = None,
        model: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> tuple[Backend, str, Request]:
        """(backend, native model id, canonical request) for a generation; ProviderError when
        the provider, model or messages are wrong."""
        return self._request(messages, model, provider, max_tokens, temperature)

    async def complete(self, backend: Backend, native: str, request: Request) -> Response:
        """Run a prepared request; an upstream failure becomes ``GENERATION_ERROR`` (502)."""
        try:
            return await backend.complete(request, native, self._ctx())
        except GatewayError as err:
            raise ProviderError(
                "GENERATION_ERROR", f"{backend.id}: {redact(err.message)}", 502
            ) from None

    @staticmethod
    def summary(
        backend: Backend, native: str, response: Response, started: float
    ) -> dict[str, Any]:
        """The admin API's view of a completed generation."""
        u = response.usage
        return {
            "content": response.text(),
            "model": response.model or native,
            "provider": backend.id,
            "finish_reason": response.stop_reason.value,
            "usage": {
                "prompt_tokens": u.input_tokens,
                "completion_tokens": u.output_tokens,
                "total_tokens": u.total_tokens,
            },
            "latency_ms": round((time.monotonic() - started) * 1000, 1),
        }

    async def chat(
        self,
        messages: list[dict[str, Any]],
        provider: str | None = None,
        model: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> dict[str, Any]:
        backend, native, request = self._request(messages, model, provider, max_tokens, temperature)
        started = time.monotonic()
        response = await self.complete(backend, native, request)
        return self.summary(backend, native, response, started)

    def stream(
        self,
        messages: list[dict[str, Any]],
        provider: str | None = None,
        model: str | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> tuple[Backend, AsyncIterator[StreamEvent]]:
        backend, native, request = self._request(messages, model, provider, max_tokens, temperature)
        return backend, backend.stream(request, native, self._ctx())

    def open_stream(
        self, backend: Backend, native: str, request: Request
    ) -> AsyncIterator[StreamEvent]:
        """Stream a prepared request (see :meth:`prepare`)."""
        return backend.stream(request, native, self._ctx())

    # ------------------------------------------------------------------ registration

    async def _build(self, spec: ProviderSpec, api_key: str | None) -> Backend:
        gw = self.gateway
        kind = gw.registry.get(spec.kind)
        if kind is None:
            raise ProviderError(
                "INVALID_REQUEST",
                f"type: unknown provider type {spec.kind!r} — use one of: {', '.join(sorted(gw.registry.kinds))}",
            )
        base_url = spec.base_url or kind.default_base_url
        if kind.requires_base_url and not base_url:
            raise ProviderError("INVALID_REQUEST", "base_url: required for this provider type.")
        if base_url:
            try:
                await check_base_url(base_url, gw.config.security)
            except UnsafeURL as exc:
                raise ProviderError("INVALID_REQUEST", f"base_url: {exc}") from None
        raw: dict[str, Any] = {**spec.config, "backend_prefix": spec.name}
        if spec.base_url:
            raw["base_url"] = spec.base_url
        if api_key:
            raw["api_key"] = api_key
        if spec.models:
            raw["models"] = {"items": [{"native_id": m} for m in spec.models]}
        try:
            options = kind.options.model_validate(raw)
        except ValidationError as exc:
            raw.pop("api_key", None)
            raise ProviderError("INVALID_REQUEST", redact(spec_problems(exc, raw))) from None
        env = dict(os.environ) if self.env is None else dict(self.env)
        try:
            return kind.factory(spec.name, options, BuildContext(env=env, transport=self.transport))
        except (ValueError, RuntimeError, ImportError) as exc:
            raise ProviderError("INVALID_REQUEST", redact(str(exc))) from None

    def _check_name(self, name: str, *, replacing: bool) -> None:
        gw = self.gateway
        if name in gw.backends and name not in self.runtime:
            raise ProviderError(
                "INVALID_REQUEST",
                f"name: provider {name!r} comes from the config file — choose another name, "
                "or edit relaygate.yaml and reload.",
            )
        if name in self.runtime and not replacing:
            raise ProviderError(
                "INVALID_REQUEST",
                f"name: provider {name!r} is already registered — use PUT /api/providers/{name}.",
            )
        if name in gw.registry.reserved_prefixes():
            raise ProviderError(
                "INVALID_REQUEST", f"name: {name!r} is reserved for a built-in backend kind."
            )
        taken = {b.prefix: b.id for b in gw.backends.values() if b.id != name}
        if name in taken:
            raise ProviderError(
                "INVALID_REQUEST", f"name: prefix {name!r} is already used by {taken[name]!r}."
            )

    async def register(self, spec: ProviderSpec, *, replacing: bool = False) -> dict[str, Any]:
        """Build, persist and start routing to ``spec``. Its key needs the vault."""
        async with self._lock:
            self._check_name(spec.name, replacing=replacing)
            api_key = spec.api_key
            secret = None
            if api_key:
                if not self.vault.available:
                    raise ProviderError(
                        "INVALID_REQUEST",
                        f"api_key: refusing to store a provider key without the vault — {self.vault.problem}",
                    )
                register_secret(api_key)
                secret = self.vault.encrypt(api_key)
            elif replacing and spec.name in self.runtime and self.store is not None:
                secret = await self._stored_secret(spec.name)
                api_key = self.vault.decrypt(secret) if secret else None
            backend = await self._build(spec, api_key)
            clean = spec.model_copy(update={"api_key": None})
            if self.store is not None:
                try:
                    await self.store.save_provider(
                        spec.name,
                        spec.kind,
                        clean.model_dump(exclude={"api_key"}, by_alias=True),
                        secret=secret,
                        enabled=spec.enabled,
                        default_model=spec.default_model,
                    )
                except StoreUnavailable as exc:
                    await backend.aclose()
                    raise ProviderError(
                        "INTERNAL_ERROR",
                        f"the store is unavailable, nothing registered: {exc}",
                        503,
                    ) from None
            old = self.runtime.get(spec.name)
            self.runtime[spec.name] = Registered(clean, backend, bool(api_key))
            await self._apply()
            if old is not None:
                self._retire([old.backend])
            return (
                self.describe(spec.name) if spec.enabled else {"name": spec.name, "enabled": False}
            )

    async def update(self, name: str, changes: ProviderUpdate) -> dict[str, Any]:
        reg = self.runtime.get(name)
        if reg is None:
            self.get(name)  # 404 when unknown
            raise ProviderError(
                "INVALID_REQUEST",
                f"provider {name!r} comes from the config file — edit relaygate.yaml and reload.",
            )
        data = reg.spec.model_dump(by_alias=True)
        data.update(changes.model_dump(exclude_none=True))
        spec = ProviderSpec.model_validate(data)
        return await self.register(spec, replacing=True)

    async def _stored_secret(self, name: str) -> str | None:
        assert self.store is not None
        for row in await self.store.load_providers():
            if row["name"] == name:
                return row["secret"]  # type: ignore[no-any-return]
        return None

    async def set_default(self, name: str) -> None:
        self.get(name)
        self.default = name
        if self.store is not None:
            try:
                await self.store.set_setting("default_provider", name)
            except StoreUnavailable as exc:
                log.warning("default provider not persisted: %s", exc)

    async def load(self) -> list[str]:
        """Re-create the providers persisted in the store (start-up). Returns problems."""
        if self.store is None:
            return []
        problems: list[str] = []
        try:
            rows = await self.store.load_providers()
            self.default = await self.store.get_setting("default_provider")
        except StoreUnavailable as exc:
            return [f"stored providers not loaded: {exc}"]
        for row in rows:
            name = row["name"]
            if name in self.gateway.backends and name not in self.runtime:
                problems.append(f"stored provider {name!r} skipped: the config defines it")
                continue
            try:
                api_key = self.vault.decrypt(row["secret"]) if row["secret"] else None
                if api_key:
                    register_secret(api_key)
                spec = ProviderSpec.model_validate({**row["config"], "type": row["kind"]})
                backend = await self._build(spec, api_key)
            except (VaultUnavailable, ProviderError, ValidationError) as exc:
                message = exc.message if isinstance(exc, ProviderError) else str(exc)
                problems.append(f"stored provider {name!r} skipped: {message}")
                continue
            self.runtime[name] = Registered(spec, backend, bool(api_key))
        if self.runtime:
            await self._apply()
        for problem in problems:
            log.warning("%s", problem)
        return problems

    # ------------------------------------------------------------------ swapping

    def merged(self, base: Gateway) -> Gateway:
        """``base`` (built from the config) plus the enabled run-time providers."""
        backends = dict(base.backends)
        for name, reg in self.runtime.items():
            if reg.spec.enabled and name not in backends:
                backends[name] = reg.backend
        config = base.config
        router = Router(
            backends,
            routes=config.routes,
            aliases=config.aliases,
            default_model=config.default_model,
        )
        gateway = replace(
            base,
            backends=backends,
            router=router,
            models=list(base.models),
            discovery_errors=dict(base.discovery_errors),
        )
        return gateway

    async def _apply(self) -> None:
        """Swap in the current config's backends plus the run-time ones."""
        gw = self.gateway
        config_backends = {k: v for k, v in gw.backends.items() if k not in self.runtime}
        base = replace(gw, backends=config_backends)
        new = self.merged(base)
        runtime_ids = set(self.runtime)
        new.models = [m for m in gw.models if m.backend not in runtime_ids]
        for name, reg in self.runtime.items():
            if not reg.spec.enabled:
                continue
            try:
                new.models.extend(await reg.backend.list_models())
                new.discovery_errors.pop(name, None)
            except (GatewayError, OSError, ValueError) as exc:
                message = exc.message if isinstance(exc, GatewayError) else str(exc)
                new.discovery_errors[name] = redact(message)
        new.router.set_inventory(new.models)
        self.holder.swap(new)

    def _retire(self, backends: list[Backend], delay: float | None = None) -> None:
        """Close replaced backends once requests still using them had time to finish."""
        if not backends:
            return
        wait = self.gateway.config.server.shutdown_grace_seconds if delay is None else delay

        self._retiring.extend(backends)

        async def later() -> None:
            await asyncio.sleep(wait)
            for b in backends:
                if b in self._retiring:
                    self._retiring.remove(b)
            await asyncio.gather(*(b.aclose() for b in backends), return_exceptions=True)

        task = asyncio.get_running_loop().create_task(later())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def retire_gateway(self, old: Gateway) -> None:
        """After a reload: close the old config backends (not the run-time ones, still in use)."""
        self._retire(
            [
                b
                for name, b in old.backends.items()
                if self.runtime.get(name, None) is None or self.runtime[name].backend is not b
            ]
        )

    async def close_all(self) -> None:
        for task in list(self._retired):
            task.cancel()
        await asyncio.gather(*self._retired, return_exceptions=True)
        backends = {id(b): b for b in [*self.gateway.backends.values(), *self._retiring]}
        self._retiring.clear()
        for reg in self.runtime.values():
            backends[id(reg.backend)] = reg.backend
        await asyncio.gather(*(b.aclose() for b in backends.values()), return_exceptions=True)


__all__ = [
    "ProviderError",
    "ProviderManager",
    "ProviderSpec",
    "ProviderUpdate",
]
