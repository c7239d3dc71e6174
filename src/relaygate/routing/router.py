"""Model selectors → plans.

A selector is ``prefix/native_id`` (or ``prefix:native_id``; the first separator splits and the
rest is the native id, so ``ollama/llama3:8b`` and ``openrouter/anthropic/claude-x`` work), a
route name, an alias, or a bare native id found in the inventory. An empty selector (or
``default``) takes ``default_model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relaygate.backends.base import Backend
from relaygate.backends.transport import Timeouts
from relaygate.canonical import ErrorKind, GatewayError, ModelInfo
from relaygate.config import RouteConfig
from relaygate.routing.state import RoutingState


@dataclass(slots=True)
class Target:
    backend: Backend
    native_id: str
    selector: str
    weight: float = 1.0


@dataclass(slots=True)
class Plan:
    name: str  # the route name, or the selector for a direct model
    strategy: str  # "single" | "fallback" | "balance" | "race" | "hedge" | "consensus"
    targets: list[Target]
    route: RouteConfig | None = None
    extra: dict[str, object] = field(default_factory=dict)
    state: RoutingState | None = None  # breakers and statistics shared across requests
    timeouts: Timeouts | None = None  # the route's own, overriding the gateway's defaults


def split_selector(selector: str) -> tuple[str, str] | None:
    """``"a/b:c"`` → ``("a", "b:c")``; None when there is no separator."""
    for i, ch in enumerate(selector):
        if ch == "/" or ch == ":":
            if i == 0 or i == len(selector) - 1:
                return None
            return selector[:i], selector[i + 1 :]
    return None


class Router:
    def __init__(
        self,
        backends: dict[str, Backend],
        *,
        routes: list[RouteConfig] | None = None,
        aliases: dict[str, str] | None = None,
        default_model: str | None = None,
        state: RoutingState | None = None,
    ) -> None:
        self.state = state or RoutingState()
        self.by_prefix = {b.prefix: b for b in backends.values()}
        self.routes = {r.name: r for r in routes or []}
        self.aliases = dict(aliases or {})
        self.default_model = default_model
        self.models: dict[str, ModelInfo] = {}  # client id → model
        self.by_native: dict[str, list[ModelInfo]] = {}
        self._cache: dict[str, Plan] = {}

    def set_inventory(self, models: list[ModelInfo]) -> None:
        self.models = {m.id: m for m in models}
        by_native: dict[str, list[ModelInfo]] = {}
        for m in models:
            by_native.setdefault(m.native_id, []).append(m)
        self.by_native = by_native
        self._cache.clear()

    def resolve(self, selector: str) -> Plan:
        plan = self._cache.get(selector)
        if plan is None:
            plan = self._resolve(selector, depth=0)
            plan.state = self.state
            if len(self._cache) < 4096:
                self._cache[selector] = plan
        return plan

    def _resolve(self, selector: str, depth: int) -> Plan:
        if depth > 8:
            raise GatewayError(
                ErrorKind.INVALID_REQUEST,
                f"alias loop while resolving model {selector!r}",
                param="model",
            )
        if selector in ("", "default"):
            if not self.default_model:
                raise GatewayError(
                    ErrorKind.INVALID_REQUEST,
                    "no model given and no default_model is configured",
                    param="model",
                )
            return self._resolve(self.default_model, depth + 1)
        alias = self.aliases.get(selector)
        if alias is not None:
            return self._resolve(alias, depth + 1)
        route = self.routes.get(selector)
        if route is not None:
            targets = []
            weights = route.weights or [1.0] * len(route.targets)
            for sel, weight in zip(route.targets, weights, strict=False):
                target = self._target(sel, depth + 1)
                target.weight = weight
                targets.append(target)
            timeouts = None
            if route.timeouts is not None:
                t = route.timeouts
                timeouts = Timeouts(connect=t.connect, first_token=t.first_token, total=t.total)
            return Plan(route.name, route.strategy, targets, route, timeouts=timeouts)
        return Plan(selector, "single", [self._target(selector, depth)])

    def _target(self, selector: str, depth: int) -> Target:
        alias = self.aliases.get(selector)
        if alias is not None and depth < 8:
            return self._target(alias, depth + 1)
        known = self.models.get(selector)
        if known is not None:
            backend = self._backend_by_id(known.backend)
            if backend is not None:
                return Target(backend, known.native_id, selector)
        parts = split_selector(selector)
        if parts is not None:
            backend = self.by_prefix.get(parts[0])
            if backend is not None:
                return Target(backend, parts[1], f"{backend.prefix}/{parts[1]}")
        found = self.by_native.get(selector)
        if found:
            backend = self._backend_by_id(found[0].backend)
            if backend is not None:
                return Target(backend, found[0].native_id, found[0].id)
        raise GatewayError(
            ErrorKind.NOT_FOUND,
            f"The model `{selector}` does not exist on this gateway. Use `prefix/model` with one of the "
            f"configured prefixes ({', '.join(sorted(self.by_prefix)) or 'none configured'}), a route "
            "or an alias; GET /v1/models lists them.",
            param="model",
            code="model_not_found",
        )

    def _backend_by_id(self, backend_id: str) -> Backend | None:
        for backend in self.by_prefix.values():
            if backend.id == backend_id:
                return backend
        return None
