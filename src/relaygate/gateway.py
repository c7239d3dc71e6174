"""The assembled gateway: config → validated backends, router and inventory.

:func:`validate` is what ``check-config`` prints and what ``serve`` refuses on — one function,
so both say exactly the same thing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from relaygate.backends.base import Backend, HttpOptions
from relaygate.backends.registry import BuildContext, Registry, load_registry
from relaygate.backends.transport import Timeouts, Transport
from relaygate.canonical import GatewayError, ModelInfo
from relaygate.config import BackendEntry, Config, ConfigError, pydantic_problems
from relaygate.hooks import make_plugin_manager
from relaygate.routing.router import Router, split_selector

log = logging.getLogger(__name__)


def _where(i: int, entry: BackendEntry) -> str:
    return f"plugins.backends[{i}] ({entry.id})"


def validate(
    config: Config, registry: Registry, env: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, BaseModel]]:
    """Every problem of ``config`` beyond its structure, one line each; plus the parsed
    options of each enabled backend (by id)."""
    env = os.environ if env is None else env
    problems: list[str] = []
    options: dict[str, BaseModel] = {}
    reserved = registry.reserved_prefixes()
    seen_ids: set[str] = set()
    prefixes: dict[str, str] = {}
    for i, entry in enumerate(config.plugins.backends):
        where = _where(i, entry)
        if entry.id in seen_ids:
            problems.append(
                f"{where}.id: duplicate backend id {entry.id!r} — give each backend a unique id"
            )
        seen_ids.add(entry.id)
        kind = registry.get(entry.kind)
        if kind is None:
            known = ", ".join(sorted(registry.kinds))
            problems.append(f"{where}.kind: unknown kind {entry.kind!r} — use one of: {known}")
            continue
        if not entry.enabled:
            continue
        try:
            parsed = kind.options.model_validate(entry.config)
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, entry.config, f"{where}.config"))
            continue
        options[entry.id] = parsed
        prefix = getattr(parsed, "backend_prefix", None)
        if kind.custom_prefix:
            if not prefix:
                problems.append(
                    f"{where}.config.backend_prefix: required for kind {entry.kind} — set a short unique "
                    f"name such as {entry.id!r}"
                )
            elif "/" in prefix or ":" in prefix:
                problems.append(
                    f"{where}.config.backend_prefix: {prefix!r} must not contain '/' or ':' — use letters, "
                    "digits, '-' or '_'"
                )
            elif prefix in reserved:
                problems.append(
                    f"{where}.config.backend_prefix: {prefix!r} is reserved for the built-in {prefix} backend — "
                    "choose another prefix"
                )
        effective = prefix or entry.id
        if effective in prefixes:
            problems.append(
                f"{where}.config.backend_prefix: {effective!r} is already used by backend "
                f"{prefixes[effective]!r} — prefixes must be unique among enabled backends"
            )
        else:
            prefixes[effective] = entry.id
        if isinstance(parsed, HttpOptions):
            if kind.requires_base_url and not parsed.base_url:
                problems.append(
                    f"{where}.config.base_url: required for kind {entry.kind} — set the provider's API root, "
                    "e.g. https://api.example.com/v1"
                )
            root = parsed.api_key_env_var_root
            if (
                root
                and not parsed.credentials
                and not parsed.api_keys
                and not parsed.api_key
                and not env.get(root)
            ):
                problems.append(
                    f"{where}.config.api_key_env_var_root: environment variable {root} is not set — export "
                    f"{root}=<key> (add {root}_2, {root}_3… for more keys)"
                )
            if parsed.models is not None and parsed.models.source == "file":
                path = parsed.models.path
                if not path:
                    problems.append(
                        f"{where}.config.models.path: required when source is 'file' — give the path"
                    )
                elif not os.path.exists(path):
                    problems.append(
                        f"{where}.config.models.path: {path} does not exist — fix the path"
                    )
    problems.extend(_validate_routes(config, prefixes))
    problems.extend(section_problems(config))
    auth = config.server.auth
    if auth.enabled and not env.get(auth.api_key_env):
        problems.append(
            f"server.auth.api_key_env: auth is enabled but {auth.api_key_env} is not set — export "
            f"{auth.api_key_env}=<master key> or set server.auth.enabled: false"
        )
    return problems, options


# Modules owning a section of relaygate.yaml; each has ``problems(config) -> list[str]``. They
# are imported only to validate, so the gateway core does not depend on them.
SECTION_CHECKS = (
    "relaygate.routing.settings",  # breaker:, health:
    "relaygate.limits",  # limits:
    "relaygate.prices",  # prices:
    "relaygate.netguard",  # security:
    "relaygate.server.responses_state",  # responses:
    "relaygate.server.tracing",  # tracing:
)


def section_problems(config: Config) -> list[str]:
    """The problems of every subsystem section, one line each (field, what, fix)."""
    import importlib

    out: list[str] = []
    for name in SECTION_CHECKS:
        out.extend(importlib.import_module(name).problems(config))
    return out


def _validate_routes(config: Config, prefixes: dict[str, str]) -> list[str]:
    problems: list[str] = []
    names = {r.name for r in config.routes}
    seen_routes: set[str] = set()
    for i, route in enumerate(config.routes):
        where = f"routes[{i}] ({route.name})"
        if route.name in seen_routes:
            problems.append(f"{where}.name: duplicate route name — give each route a unique name")
        seen_routes.add(route.name)
        if not route.targets:
            problems.append(
                f"{where}.targets: empty — list at least one model such as openai/gpt-4o-mini"
            )
        for j, target in enumerate(route.targets):
            resolved = config.aliases.get(target, target)
            parts = split_selector(resolved)
            if resolved in names:
                problems.append(
                    f"{where}.targets[{j}]: {target!r} is a route — routes do not nest; list that "
                    "route's models here instead"
                )
                continue
            if parts is None or parts[0] not in prefixes:
                problems.append(
                    f"{where}.targets[{j}]: {target!r} names no configured backend — use prefix/model with one of: "
                    f"{', '.join(sorted(prefixes)) or '(no backends configured)'}"
                )
        if route.weights is not None:
            if len(route.weights) != len(route.targets):
                problems.append(
                    f"{where}.weights: {len(route.weights)} weights for {len(route.targets)} targets — "
                    "give one weight per target"
                )
            for j, weight in enumerate(route.weights):
                if weight <= 0:
                    problems.append(
                        f"{where}.weights[{j}]: {weight} — weights must be greater than 0"
                    )
        if route.quorum is not None and route.quorum > len(route.targets):
            problems.append(
                f"{where}.quorum: {route.quorum} is larger than its {len(route.targets)} targets — "
                "lower the quorum or add targets"
            )
        if route.strategy == "consensus" and len(route.targets) < 2:
            problems.append(
                f"{where}.targets: consensus needs at least two targets — add targets or use fallback"
            )
    for alias, target in config.aliases.items():
        resolved = target
        if resolved in names:
            continue
        parts = split_selector(resolved)
        if parts is None or parts[0] not in prefixes:
            problems.append(
                f"aliases.{alias}: {target!r} names no configured backend or route — fix the target"
            )
    if config.default_model:
        dm = config.default_model
        parts = split_selector(config.aliases.get(dm, dm))
        if (
            dm not in names
            and dm not in config.aliases
            and (parts is None or parts[0] not in prefixes)
        ):
            problems.append(
                f"default_model: {dm!r} names no configured backend, route or alias — fix it"
            )
    return problems


def auto_detect(registry: Registry, env: Mapping[str, str]) -> Config:
    """The embedded defaults: one backend per provider whose key is in the environment."""
    backends = []
    for kind in registry.kinds.values():
        if kind.env_key and env.get(kind.env_key):
            backends.append(
                BackendEntry(
                    id=kind.name, kind=kind.name, config={"api_key_env_var_root": kind.env_key}
                )
            )
    local = registry.get("local")
    # RELAYGATE_LOCAL_MODEL=off keeps the in-process model out of the embedded defaults.
    if local is not None and env.get("RELAYGATE_LOCAL_MODEL", "").lower() not in (
        "off",
        "0",
        "false",
    ):
        try:
            import llama_cpp  # noqa: F401

            backends.append(BackendEntry(id="local", kind="local", config={}))
        except ImportError:
            pass
    config = Config()
    config.plugins.backends = backends
    return config


@dataclass
class Gateway:
    config: Config
    registry: Registry
    pm: pluggy.PluginManager
    backends: dict[str, Backend]
    router: Router
    models: list[ModelInfo] = field(default_factory=list)
    discovery_errors: dict[str, str] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    state: dict[str, Any] = field(default_factory=dict)  # subsystems hang their objects here
    # The environment the config was validated against (the master key is read from it too).
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    async def discover(self) -> list[ModelInfo]:
        """Load every backend's inventory; a failing backend is reported, the others go on."""

        async def one(backend: Backend) -> list[ModelInfo]:
            try:
                models = await backend.list_models()
                self.discovery_errors.pop(backend.id, None)
                return models
            except (GatewayError, OSError, ValueError) as exc:
                message = exc.message if isinstance(exc, GatewayError) else str(exc)
                self.discovery_errors[backend.id] = message
                setattr(backend, "discovery_error", message)  # noqa: B010 — not every kind declares it
                log.warning("model discovery failed for backend %s: %s", backend.id, message)
                return []

        results = await asyncio.gather(*(one(b) for b in self.backends.values()))
        self.models = [m for group in results for m in group]
        self.router.set_inventory(self.models)
        return self.models

    async def aclose(self) -> None:
        await asyncio.gather(*(b.aclose() for b in self.backends.values()), return_exceptions=True)


def build_gateway(
    config: Config,
    *,
    env: Mapping[str, str] | None = None,
    transport: Transport | None = None,
    pm: pluggy.PluginManager | None = None,
) -> Gateway:
    """Validate and assemble. Raises :class:`ConfigError` with every problem."""
    env = dict(os.environ) if env is None else dict(env)
    pm = pm or make_plugin_manager()
    registry = load_registry(pm)
    problems, options = validate(config, registry, env)
    if problems:
        raise ConfigError(problems)
    ctx = BuildContext(env=env, transport=transport)
    backends: dict[str, Backend] = {}
    for i, entry in enumerate(config.plugins.backends):
        if not entry.enabled:
            continue
        kind = registry.get(entry.kind)
        assert kind is not None
        try:
            backends[entry.id] = kind.factory(entry.id, options[entry.id], ctx)
        except (ValueError, RuntimeError, ImportError) as exc:
            problems.append(f"{_where(i, entry)}: {exc}")
    if problems:
        raise ConfigError(problems)
    from relaygate.routing.settings import breaker_config
    from relaygate.routing.state import RoutingState

    router = Router(
        backends,
        routes=config.routes,
        aliases=config.aliases,
        default_model=config.default_model,
        state=RoutingState(breaker_config(config)),
    )
    t = config.timeouts
    return Gateway(
        config,
        registry,
        pm,
        backends,
        router,
        timeouts=Timeouts(connect=t.connect, first_token=t.first_token, total=t.total),
        env=env,
    )
