"""``/metrics`` for Prometheus: an observer counting requests, errors and tokens and timing
latency and time to first token; breaker states, key-pool usage, in-flight requests and the
ledger's queue are read at scrape time. Each app has its own registry (several can share a
process, e.g. in tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relaygate.routing.router import Plan
from relaygate.server.pipeline import RequestInfo, UsageRecord

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
BREAKER_STATES = ("closed", "half_open", "open")
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")


class Metrics:
    def __init__(self, app: RelayApp) -> None:
        self.app = app
        self.registry = CollectorRegistry()
        labels = ("backend", "route", "status")
        self.requests = Counter(
            "relaygate_requests",
            "Requests by backend, route and status.",
            labels,
            registry=self.registry,
        )
        self.errors = Counter(
            "relaygate_errors",
            "Failed requests by backend, route, status and error kind.",
            (*labels, "kind"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "relaygate_request_seconds",
            "Request latency (until the last byte).",
            ("backend", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "relaygate_time_to_first_token_seconds",
            "Time to the first token.",
            ("backend", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "relaygate_tokens",
            "Tokens reported by providers.",
            ("backend", "model", "type"),
            registry=self.registry,
        )
        self.cost = Counter(
            "relaygate_cost_usd",
            "Cost of requests with a known price.",
            ("backend", "model"),
            registry=self.registry,
        )
        self.registry.register(_Live(app))
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._token_children: dict[tuple[str, str], tuple[Any, ...]] = {}

    async def before(self, info: RequestInfo) -> None:
        return None

    async def after_plan(self, info: RequestInfo, plan: Plan) -> None:
        return None

    def finish(self, info: RequestInfo, record: UsageRecord) -> None:
        backend = record.backend or "none"
        # Unresolved selectors are client input: never let them become label values.
        route = info.plan.name if info.plan is not None else "unresolved"
        status = record.status
        # ``labels()`` validates, locks and looks up on every call: the children of a label set
        # are looked up once and kept (label values come from the config, so this stays small).
        key = (backend, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(backend, route, str(status)),
                self.latency.labels(backend, route),
                self.ttft.labels(backend, route),
            )
            self._children[key] = children
        requests, latency, ttft = children
        requests.inc()
        if record.error is not None:
            kind = record.error.split(":", 1)[0][:32]
            self.errors.labels(backend, route, str(status), kind).inc()
        latency.observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            ttft.observe(record.ttft_ms / 1000)
        model = record.model or "none"
        u = record.usage
        if (
            u.input_tokens
            or u.output_tokens
            or u.cache_read_tokens
            or u.cache_write_tokens
            or u.reasoning_tokens
        ):
            counters = self._token_children.get((backend, model))
            if counters is None:
                counters = tuple(self.tokens.labels(backend, model, kind) for kind in TOKEN_KINDS)
                self._token_children[(backend, model)] = counters
            for counter, value in zip(
                counters,
                (
                    u.input_tokens,
                    u.output_tokens,
                    u.cache_read_tokens,
                    u.cache_write_tokens,
                    u.reasoning_tokens,
                ),
                strict=True,
            ):
                if value:
                    counter.inc(value)
        if record.cost:
            self.cost.labels(backend, model).inc(record.cost)


class _Live:
    """Gauges computed when Prometheus scrapes."""

    def __init__(self, app: RelayApp) -> None:
        self.app = app

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        app = self.app
        in_flight = GaugeMetricFamily("relaygate_in_flight", "Requests being served.")
        in_flight.add_metric([], app.in_flight)
        yield in_flight
        breaker = GaugeMetricFamily(
            "relaygate_breaker_state",
            "Circuit breaker state (1 = current).",
            labels=("backend", "state"),
        )
        keys = GaugeMetricFamily(
            "relaygate_backend_keys",
            "Provider keys by availability.",
            labels=("backend", "state"),
        )
        health = app.state.get("health")
        for backend in app.gateway.backends.values():
            info: dict[str, Any] = {}
            if health is not None:
                try:
                    info = dict(health.backend_health(backend.id))
                except Exception:
                    info = {}
            state = str(info.get("breaker", "closed"))
            for name in BREAKER_STATES:
                breaker.add_metric([backend.id, name], 1.0 if name == state else 0.0)
            pool = getattr(backend, "keys", None)
            snapshot = pool.snapshot() if pool is not None and hasattr(pool, "snapshot") else []
            available = sum(1 for k in snapshot if k.get("available"))
            keys.add_metric([backend.id, "available"], available)
            keys.add_metric([backend.id, "cooling"], len(snapshot) - available)
        yield breaker
        yield keys
        ledger = app.state.get("ledger")
        if ledger is not None:
            rows = GaugeMetricFamily(
                "relaygate_ledger_rows", "Usage ledger rows by fate.", labels=("state",)
            )
            stats = ledger.stats()
            for name in ("queued", "written", "dropped"):
                rows.add_metric([name], stats[name])
            yield rows
        limiter = app.state.get("limiter")
        if limiter is not None:
            rejected = GaugeMetricFamily(
                "relaygate_limit_rejections", "Requests refused by rate limits or budgets."
            )
            rejected.add_metric([], limiter.rejected)
            yield rejected


def install(app: RelayApp) -> None:
    metrics = Metrics(app)
    app.state["metrics"] = metrics
    app.observers.append(metrics)

    async def endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.routes.append(Route("/metrics", endpoint, methods=["GET"]))
