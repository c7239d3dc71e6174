from __future__ import annotations

from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import serve_gateway
from tests.opskit import chat, ops_config

from relaygate.server.metrics import _Hist
from relaygate.testing import Fault, OpenAIEmulator, Reply


async def test_metrics_count_requests_tokens_errors_and_live_gauges(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    config = ops_config(openai_upstream, f"sqlite:///{tmp_path / 'm.db'}", auth=False)
    config["retry"] = {"attempts": 1}
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        openai_upstream.script(Reply(text="ok", input_tokens=5, output_tokens=3), Fault(status=500))
        for _ in range(2):
            async with http.post(gw.url + "/v1/chat/completions", json=chat()) as r:
                await r.read()
        async with http.post(gw.url + "/v1/chat/completions", json=chat("bogus-model-xyz")) as r:
            assert r.status == 404
        async with http.get(gw.url + "/metrics") as r:
            assert r.status == 200
            text = await r.text()
    assert (
        'relaygate_requests_total{backend="emu",route="emu/gpt-4o-mini",status="200"} 1.0' in text
    )
    assert (
        'relaygate_errors_total{backend="emu",kind="upstream_error",route="emu/gpt-4o-mini",status="502"} 1.0'
        in text
    )
    assert 'relaygate_tokens_total{backend="emu",model="emu/gpt-4o-mini",type="input"} 5.0' in text
    assert 'relaygate_tokens_total{backend="emu",model="emu/gpt-4o-mini",type="output"} 3.0' in text
    assert "relaygate_time_to_first_token_seconds_count" in text
    assert 'route="unresolved"' in text and "bogus-model-xyz" not in text
    assert 'relaygate_breaker_state{backend="emu",state="closed"} 1.0' in text
    assert 'relaygate_backend_keys{backend="emu",state="available"} 1.0' in text
    assert 'relaygate_ledger_rows{state="written"}' in text
    # The exposition parses, and each latency histogram is cumulative and ends at its count.
    families = {f.name: f for f in text_string_to_metric_families(text)}
    latency = families["relaygate_request_seconds"]
    by_route: dict[str, list[tuple[str, float]]] = {}
    counts: dict[str, float] = {}
    for sample in latency.samples:
        route = sample.labels["route"]
        if sample.name.endswith("_bucket"):
            by_route.setdefault(route, []).append((sample.labels["le"], sample.value))
        elif sample.name.endswith("_count"):
            counts[route] = sample.value
    assert counts["emu/gpt-4o-mini"] == 2 and counts["unresolved"] == 1
    for route, buckets in by_route.items():
        values = [v for _, v in buckets]
        assert values == sorted(values) and buckets[-1] == ("+Inf", counts[route])


def test_histogram_buckets_count_values_at_their_bound() -> None:
    hist = _Hist()
    for value in (0.05, 0.0500001, 400.0):
        hist.observe(value)
    cumulative = dict(hist.cumulative())
    assert cumulative["0.05"] == 1  # "le": a value equal to the bound is in that bucket
    assert cumulative["0.1"] == 2 and cumulative["300.0"] == 2 and cumulative["+Inf"] == 3
    assert hist.count == 3 and hist.total == 0.05 + 0.0500001 + 400.0
