"""OpenTelemetry tracing (the ``otel`` extra): one span per request, as an observer.

Config::

    tracing:
      enabled: true
      exporter: global      # global: the process's tracer provider (e.g. opentelemetry-instrument)
                            # console: spans printed to stdout; otlp: OTLP/HTTP to ``endpoint``
      endpoint: http://127.0.0.1:4318/v1/traces   # otlp only (default: the exporter's own)
      service_name: relaygate

The span is built when the request finishes, from the :class:`UsageRecord` (start time = end
time - latency), so the hot path pays nothing while the request runs. Attributes: ``http.route``
(the path), ``relaygate.route``, ``relaygate.backend``, ``relaygate.model``, ``relaygate.dialect``,
``http.response.status_code``, ``gen_ai.usage.input_tokens`` / ``output_tokens`` (and cache and
reasoning counts when reported), ``relaygate.attempts``, ``relaygate.cost_usd``.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relaygate.config import Config, ConfigError, pydantic_problems
from relaygate.routing.router import Plan
from relaygate.server.pipeline import RequestInfo, UsageRecord

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'relaygate[otel]'"
OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


class TracingConfig(BaseModel):
    """The ``tracing:`` section of relaygate.yaml."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    exporter: Literal["global", "console", "otlp"] = "global"
    endpoint: str | None = None
    service_name: str = Field("relaygate", min_length=1)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def problems(config: Config) -> list[str]:
    """The ``tracing:`` section's problems, one line each."""
    try:
        cfg = TracingConfig.model_validate(config.tracing)
    except ValidationError as exc:
        return pydantic_problems(exc, config.tracing, "tracing")
    if not cfg.enabled:
        return []
    if not _installed("opentelemetry.sdk"):
        return [
            f"tracing.enabled: needs opentelemetry-sdk, which is not installed — {INSTALL_HINT} "
            "or set tracing.enabled: false"
        ]
    if cfg.exporter == "otlp" and not _installed(OTLP_MODULE):
        return [
            "tracing.exporter: 'otlp' needs opentelemetry-exporter-otlp-proto-http — pip install "
            "opentelemetry-exporter-otlp-proto-http, or use 'global' or 'console'"
        ]
    if cfg.endpoint and cfg.exporter != "otlp":
        return [
            "tracing.endpoint: only used with exporter 'otlp' — remove it or set exporter: otlp"
        ]
    return []


def tracer_provider(cfg: TracingConfig) -> Any:
    """The provider spans go to: the global one, or a new one with the configured exporter."""
    from opentelemetry import trace

    if cfg.exporter == "global":
        return trace.get_tracer_provider()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": cfg.service_name}))
    if cfg.exporter == "console":
        exporter: Any = ConsoleSpanExporter()
    else:
        otlp = importlib.import_module(OTLP_MODULE)
        exporter = (
            otlp.OTLPSpanExporter(endpoint=cfg.endpoint)
            if cfg.endpoint
            else otlp.OTLPSpanExporter()
        )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Tracing:
    """The observer. ``provider`` is an OpenTelemetry ``TracerProvider``."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.provider = provider
        self.tracer = provider.get_tracer("relaygate")
        self._kind = SpanKind.SERVER
        self._ok = Status(StatusCode.OK)
        self._status = Status
        self._error = StatusCode.ERROR

    async def before(self, info: RequestInfo) -> None:
        return None

    async def after_plan(self, info: RequestInfo, plan: Plan) -> None:
        return None

    def finish(self, info: RequestInfo, record: UsageRecord) -> None:
        end = time.time_ns()
        start = end - int(record.latency_ms * 1_000_000)
        usage = record.usage
        attributes: dict[str, Any] = {
            "http.route": info.path,
            "http.response.status_code": record.status,
            "relaygate.route": record.route,
            "relaygate.dialect": record.dialect,
            "relaygate.stream": record.stream,
            "relaygate.attempts": record.attempts,
            "relaygate.request_id": record.request_id,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
        }
        if record.backend:
            attributes["relaygate.backend"] = record.backend
        if record.model:
            attributes["relaygate.model"] = record.model
            attributes["gen_ai.request.model"] = record.model
        for name in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
            value = getattr(usage, name, 0)
            if value:
                attributes[f"relaygate.usage.{name}"] = value
        if record.ttft_ms is not None:
            attributes["relaygate.ttft_ms"] = record.ttft_ms
        if record.cost is not None:
            attributes["relaygate.cost_usd"] = record.cost
        span = self.tracer.start_span(
            f"{info.path} {record.route}", kind=self._kind, start_time=start, attributes=attributes
        )
        if record.error or record.status >= 400:
            span.set_status(self._status(self._error, record.error or f"status {record.status}"))
        else:
            span.set_status(self._ok)
        span.end(end_time=end)


def install(app: RelayApp) -> None:
    config = app.gateway.config
    found = problems(config)
    if found:
        raise ConfigError(found)
    cfg = TracingConfig.model_validate(config.tracing)
    if not cfg.enabled:
        return
    # A program embedding relaygate may hand in its own provider.
    provider = app.gateway.state.get("tracer_provider") or tracer_provider(cfg)
    tracing = Tracing(provider)
    app.state["tracing"] = tracing
    app.observers.append(tracing)
    if cfg.exporter != "global":

        async def start(app: RelayApp) -> None:
            async def stop() -> None:
                provider.shutdown()

            app.shutdown_callbacks.append(stop)

        app.lifecycle.append(start)
