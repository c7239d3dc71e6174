"""Backend kinds: name → factory, filled through the ``register_backend_kinds`` hook.

Built-in kinds register through the very hook third-party plugins use
(:mod:`relaygate.backends.builtin`), so the core never special-cases them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import BaseModel

from relaygate.backends.base import Backend, HttpOptions
from relaygate.backends.transport import Transport


@dataclass(slots=True)
class BuildContext:
    env: Mapping[str, str]
    transport: Transport | None = None  # injected by tests
    extra: dict[str, Any] = field(default_factory=dict)


Factory = Callable[[str, Any, BuildContext], Backend]


@dataclass(frozen=True, slots=True)
class BackendKind:
    """A kind of backend. ``options`` validates the ``config:`` block (``extra="forbid"``)."""

    name: str
    factory: Factory
    options: type[BaseModel] = HttpOptions
    description: str = ""
    reserved_prefix: bool = True  # built-in names are reserved backend prefixes
    requires_base_url: bool = False
    custom_prefix: bool = False  # the custom-*-compatible kinds: backend_prefix rules apply
    env_key: str | None = None  # auto-detection: serve without config picks this up
    default_base_url: str | None = None
    install_hint: str | None = None


class Registry:
    def __init__(self) -> None:
        self.kinds: dict[str, BackendKind] = {}

    def register(self, kind: BackendKind) -> None:
        self.kinds[kind.name] = kind

    def get(self, name: str) -> BackendKind | None:
        return self.kinds.get(name)

    def reserved_prefixes(self) -> set[str]:
        return {k.name for k in self.kinds.values() if k.reserved_prefix}


def load_registry(pm: pluggy.PluginManager) -> Registry:
    registry = Registry()
    pm.hook.register_backend_kinds(register=registry.register)
    return registry
