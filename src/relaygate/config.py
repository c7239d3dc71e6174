"""``relaygate.yaml``: pydantic models, ``${ENV}`` expansion, and problems reported one per line.

Validation happens once, at the edge: :func:`load_config` returns a :class:`Config` or raises
:class:`ConfigError` whose ``problems`` each name the field and the fix. Backend kinds validate
their own ``config:`` block (see :mod:`relaygate.backends.registry`), so ``check-config`` and
``serve`` report exactly the same lines.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(Exception):
    """A config that cannot run. ``problems`` is one line per problem: field, what, fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthConfig(_Strict):
    enabled: bool = False
    api_key_env: str = "RELAYGATE_API_KEY"
    public_paths: list[str] = Field(default_factory=lambda: ["/health", "/status", "/version"])


class CorsConfig(_Strict):
    enabled: bool = False
    allowed_origins: list[str] = Field(default_factory=list)
    allowed_headers: list[str] = Field(default_factory=lambda: ["*"])


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    cors: CorsConfig = Field(default_factory=CorsConfig)
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)
    access_log: bool = True
    shutdown_grace_seconds: float = Field(30.0, ge=0)


class BackendEntry(_Strict):
    id: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)


class PluginsConfig(_Strict):
    backends: list[BackendEntry] = Field(default_factory=list)


class RetryConfig(_Strict):
    attempts: int = Field(2, ge=1, le=10)
    backoff_base: float = Field(0.25, ge=0)
    backoff_max: float = Field(4.0, ge=0)
    retry_after_cap: float = Field(10.0, ge=0)


class TimeoutConfig(_Strict):
    connect: float = Field(10.0, gt=0)
    first_token: float = Field(60.0, gt=0)
    total: float = Field(600.0, gt=0)


class RouteConfig(_Strict):
    name: str = Field(min_length=1)
    strategy: Literal["fallback", "balance", "race", "hedge", "consensus"] = "fallback"
    targets: list[str]
    weights: list[float] | None = None
    balance: Literal["weighted", "round_robin", "least_latency", "least_busy"] = "weighted"
    retry: RetryConfig | None = None
    timeouts: TimeoutConfig | None = None
    hedge_delay: float | None = Field(None, ge=0)
    hedge_percentile: float = Field(95.0, gt=0, le=100)
    hedge_max_extra: int = Field(1, ge=0)
    quorum: int | None = Field(None, ge=1)


class StorageConfig(_Strict):
    url: str = "sqlite:///relaygate.db"
    batch_size: int = Field(100, ge=1)
    flush_interval: float = Field(0.5, gt=0)


class RedisConfig(_Strict):
    url: str | None = None


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    routes: list[RouteConfig] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    default_model: str | None = None
    retry: RetryConfig = Field(default_factory=RetryConfig)
    timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    # Free-form sections owned by optional subsystems (limits, prices, hooks…); each subsystem
    # validates its own part.
    limits: dict[str, Any] = Field(default_factory=dict)
    prices: dict[str, Any] = Field(default_factory=dict)
    security: dict[str, Any] = Field(default_factory=dict)
    breaker: dict[str, Any] = Field(default_factory=dict)
    health: dict[str, Any] = Field(default_factory=dict)
    responses: dict[str, Any] = Field(default_factory=dict)  # server/responses_state.py
    tracing: dict[str, Any] = Field(default_factory=dict)  # server/tracing.py


# ----------------------------------------------------------------------------- loading

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _key_label(name: str) -> str:
    """A key as a problem line shows it: blank, padded or invisible keys are quoted."""
    if not name.isprintable() or name.strip() != name or not name:
        return json.dumps(name)
    return name


def _expand(value: Any, path: str, problems: list[str], env: dict[str, str]) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(
                f"{path or '(top level)'}: environment variable {name} is not set — export {name}=… or write "
                f"${{{name}:-default}} to give a default"
            )
            return ""

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):  # YAML allows `1:`, `null:`, `? [a]`; a field name is text
                problems.append(
                    f"{path or '(top level)'}: key {k!r} is not a field name — quote it or remove it"
                )
                continue
            label = _key_label(k)
            out[k] = _expand(v, f"{path}.{label}" if path else label, problems, env)
        return out
    if isinstance(value, list):
        return [_expand(v, f"{path}[{i}]", problems, env) for i, v in enumerate(value)]
    return value


def _loc(loc: tuple[int | str, ...], data: Any) -> str:
    """Render a pydantic error location, naming backends and routes by their id/name."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label = f"[{part}]"
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict):
                ident = node[part].get("id") or node[part].get("name")
                if ident:
                    label = f"[{part}] ({ident})"
            out += label
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            name = _key_label(str(part))
            out += f".{name}" if out else name
            node = node.get(part) if isinstance(node, dict) else None
    return out


def pydantic_problems(exc: ValidationError, data: Any, prefix: str = "") -> list[str]:
    """One line per pydantic error, with a fix."""
    problems = []
    for err in exc.errors():
        where = _loc(tuple(err["loc"]), data)
        where = f"{prefix}.{where}" if prefix and where else (prefix or where)
        kind = err["type"]
        if kind == "extra_forbidden":
            fix = "remove it (check the spelling against the configuration reference)"
            problems.append(f"{where}: unknown field — {fix}")
        elif kind == "missing":
            problems.append(f"{where}: required field is missing — add it")
        else:
            problems.append(f"{where}: {err['msg']} — fix the value")
    return problems


def parse_config(data: Any, env: dict[str, str] | None = None) -> Config:
    """Validate a decoded YAML document (after ``${ENV}`` expansion) into a :class:`Config`.

    Raises :class:`ConfigError` listing every problem, including those found by backend kinds
    and routes (see :func:`relaygate.gateway.validate`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            ["(top level): the config must be a mapping — start from the README example"]
        )
    problems: list[str] = []
    data = _expand(data, "", problems, dict(os.environ) if env is None else env)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, data))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read, expand and validate ``path`` (structure only; see ``gateway.validate`` for the rest)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError([f"--config: cannot read {p}: {exc.strerror} — check the path"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f"line {mark.line + 1}"
        else:  # a reader error (a character YAML does not allow) carries only a position
            where = f"line {text.count(chr(10), 0, getattr(exc, 'position', 0)) + 1}"
        raise ConfigError(
            [f"{where}: invalid YAML ({getattr(exc, 'problem', exc)}) — fix the syntax"]
        ) from None
    return parse_config(data, env)


def env_keys(root: str, env: dict[str, str] | None = None) -> list[str]:
    """Keys from ``ROOT``, ``ROOT_2``, ``ROOT_3``… up to the first gap."""
    source = os.environ if env is None else env
    keys: list[str] = []
    first = source.get(root)
    if not first:
        return keys
    keys.append(first)
    i = 2
    while True:
        value = source.get(f"{root}_{i}")
        if not value:
            break
        keys.append(value)
        i += 1
    return keys
