"""``/metrics`` for Prometheus: an observer counting requests, errors and tokens and timing
latency and time to first token; breaker states, key-pool usage, in-flight requests and the
ledger's queue are read at scrape time. Each app has its own registry (several can share a
process, e.g. in tests)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
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


class _Hist:
    """One histogram series: per-bucket counts (not cumulative), the count and the sum."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.buckets[bisect.bisect_left(BUCKETS, value)] += 1
        self.count += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*BUCKETS, float("inf")), self.buckets, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return out


class Metrics:
    """Counts kept as plain numbers on the event loop (every observer runs there) and turned
    into Prometheus families only when scraped: prometheus_client's own metric objects take a
    lock on every increment and look up labels on every call, which showed in profiles of the
    request path."""

    def __init__(self, app: RelayApp) -> None:
        self.app = app
        self.registry = CollectorRegistry()
        # (backend, route, status) → [requests, latency, ttft]
        self.requests: dict[tuple[str, str, str], int] = {}
        self.errors: dict[tuple[str, str, str, str], int] = {}
        self.latency: dict[tuple[str, str], _Hist] = {}
        self.ttft: dict[tuple[str, str], _Hist] = {}
        self.tokens: dict[tuple[str, str], list[int]] = {}  # (backend, model) → TOKEN_KINDS
        self.cost: dict[tuple[str, str], float] = {}
        self.registry.register(_Counts(self))
        self.registry.register(_Live(app))

    async def before(self, info: RequestInfo) -> None:
        return None

    async def after_plan(self, info: RequestInfo, plan: Plan) -> None:
        return None

    def finish(self, info: RequestInfo, record: UsageRecord) -> None:
        backend = record.backend or "none"
        # Unresolved selectors are client input: never let them become label values.
        route = info.plan.name if info.plan is not None else "unresolved"
        status = str(record.status)
        key = (backend, route, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        if record.error is not None:
            ekey = (backend, route, status, record.error.split(":", 1)[0][:32])
            self.errors[ekey] = self.errors.get(ekey, 0) + 1
        pair = (backend, route)
        latency = self.latency.get(pair)
        if latency is None:
            latency = self.latency[pair] = _Hist()
        latency.observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            ttft = self.ttft.get(pair)
            if ttft is None:
                ttft = self.ttft[pair] = _Hist()
            ttft.observe(record.ttft_ms / 1000)
        u = record.usage
        if (
            u.input_tokens
            or u.output_tokens
            or u.cache_read_tokens
            or u.cache_write_tokens
            or u.reasoning_tokens
        ):
            mkey = (backend, record.model or "none")
            counts = self.tokens.get(mkey)
            if counts is None:
                counts = self.tokens[mkey] = [0] * len(TOKEN_KINDS)
            counts[0] += u.input_tokens
            counts[1] += u.output_tokens
            counts[2] += u.cache_read_tokens
            counts[3] += u.cache_write_tokens
            counts[4] += u.reasoning_tokens
        if record.cost:
            ckey = (backend, record.model or "none")
            self.cost[ckey] = self.cost.get(ckey, 0.0) + record.cost


class _Counts:
    """The observer's numbers as Prometheus families, built at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        m = self.metrics
        requests = CounterMetricFamily(
            "relaygate_requests",
            "Requests by backend, route and status.",
            labels=("backend", "route", "status"),
        )
        for labels, n in list(m.requests.items()):
            requests.add_metric(labels, n)
        yield requests
        errors = CounterMetricFamily(
            "relaygate_errors",
            "Failed requests by backend, route, status and error kind.",
            labels=("backend", "route", "status", "kind"),
        )
        for elabels, n in list(m.errors.items()):
            errors.add_metric(elabels, n)
        yield errors
        for name, doc, series in (
            ("relaygate_request_seconds", "Request latency (until the last byte).", m.latency),
            ("relaygate_time_to_first_token_seconds", "Time to the first token.", m.ttft),
        ):
            family = HistogramMetricFamily(name, doc, labels=("backend", "route"))
            for pair, hist in list(series.items()):
                family.add_metric(pair, hist.cumulative(), hist.total)
            yield family
        tokens = CounterMetricFamily(
            "relaygate_tokens",
            "Tokens reported by providers.",
            labels=("backend", "model", "type"),
        )
        for (backend, model), counts in list(m.tokens.items()):
            for kind, n in zip(TOKEN_KINDS, counts, strict=True):
                if n:
                    tokens.add_metric((backend, model, kind), n)
        yield tokens
        cost = CounterMetricFamily(
            "relaygate_cost_usd",
            "Cost of requests with a known price.",
            labels=("backend", "model"),
        )
        for pair, usd in list(m.cost.items()):
            cost.add_metric(pair, usd)
        yield cost


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
