"""OpenTelemetry: one span per request with route, backend, model, status and tokens."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from tests.conftest import openai_backend, serve_gateway

from relaygate.testing import OpenAIEmulator, Reply

pytest.importorskip("opentelemetry.sdk", reason="pip install 'relaygate[otel]' to run these tests")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _global_provider() -> None:
    # The process-wide provider can be set once; every test shares it and clears the exporter.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another test already set the global tracer provider")


def config(upstream: OpenAIEmulator, **tracing: Any) -> dict[str, Any]:
    return {"plugins": {"backends": [openai_backend(upstream)]}, "tracing": tracing}


async def test_span_per_request(openai_upstream: OpenAIEmulator) -> None:
    EXPORTER.clear()
    openai_upstream.script(
        Reply(text="hello", input_tokens=9, output_tokens=4),
        Reply(text="streamed", input_tokens=5, output_tokens=2),
    )
    async with (
        serve_gateway(config(openai_upstream, enabled=True)) as gw,
        aiohttp.ClientSession() as http,
    ):
        msg = [{"role": "user", "content": "hi"}]
        async with http.post(
            gw.url + "/v1/chat/completions", json={"model": "emu/gpt-4o-mini", "messages": msg}
        ) as r:
            assert r.status == 200
            request_id = r.headers["x-relaygate-request-id"]
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={
                "model": "emu/gpt-4o-mini",
                "messages": msg,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ) as r:
            await r.read()
        async with http.post(
            gw.url + "/v1/chat/completions", json={"model": "ghost/x", "messages": msg}
        ) as r:
            assert r.status == 404
    spans = EXPORTER.get_finished_spans()
    assert len(spans) == 3
    first, second, failed = spans
    attrs = dict(first.attributes or {})
    assert attrs["http.route"] == "/v1/chat/completions"
    assert attrs["relaygate.route"] == "emu/gpt-4o-mini"
    assert attrs["relaygate.backend"] == "emu"
    assert attrs["relaygate.model"] == "emu/gpt-4o-mini"
    assert attrs["http.response.status_code"] == 200
    assert attrs["gen_ai.usage.input_tokens"] == 9 and attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["relaygate.request_id"] == request_id
    assert first.status.status_code == trace.StatusCode.OK
    assert first.end_time is not None and first.start_time is not None
    assert first.end_time >= first.start_time
    second_attrs = dict(second.attributes or {})
    assert second_attrs["relaygate.stream"] is True
    assert second_attrs["gen_ai.usage.output_tokens"] == 2
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert dict(failed.attributes or {})["http.response.status_code"] == 404
    assert "relaygate.backend" not in dict(failed.attributes or {})


async def test_disabled_makes_no_spans(openai_upstream: OpenAIEmulator) -> None:
    EXPORTER.clear()
    async with serve_gateway(config(openai_upstream)) as gw, aiohttp.ClientSession() as http:
        assert "tracing" not in gw.app.state
        async with http.post(
            gw.url + "/v1/chat/completions",
            json={"model": "emu/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        ) as r:
            assert r.status == 200
    assert EXPORTER.get_finished_spans() == ()
