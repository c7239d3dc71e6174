from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from tests.conftest import serve_gateway
from tests.opskit import MASTER, auth, chat, ops_config

from relaygate.store import Store
from relaygate.testing import OpenAIEmulator, Reply


@pytest.fixture(autouse=True)
def _master(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_TEST_MASTER", MASTER)


async def test_stream_and_non_stream_give_identical_rows(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    async with (
        serve_gateway(ops_config(openai_upstream, url)) as gw,
        aiohttp.ClientSession() as http,
    ):
        store: Store = gw.app.state["store"]
        key = await store.create_key("ci")
        reply = Reply(
            text="hello there",
            input_tokens=11,
            output_tokens=7,
            cache_read_tokens=3,
            reasoning_tokens=2,
        )
        openai_upstream.script(reply, reply)
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat(), headers=auth(key.key)
        ) as r:
            assert r.status == 200, await r.text()
            # 8 uncached input at $1000/M + 3 cached at the input price + 7 output at $2000/M
            assert r.headers["x-relaygate-cost"] == "0.025"
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat(stream=True), headers=auth(key.key)
        ) as r:
            assert r.status == 200
            text = await r.text()
            assert '"prompt_tokens"' not in text  # the client did not ask for the usage chunk
        await gw.app.state["ledger"].flush()
        rows = sorted(await store.usage_rows(), key=lambda row: row["stream"])
    assert len(rows) == 2
    fields = (
        "key_id",
        "route",
        "backend",
        "model",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "reasoning_tokens",
        "status",
        "cost",
        "dialect",
    )
    assert [rows[0][f] for f in fields] == [rows[1][f] for f in fields]
    row = rows[1]
    assert row["stream"] is True and rows[0]["stream"] is False
    assert row["key_id"] == key.id
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"]) == (11, 7, 3)
    assert row["reasoning_tokens"] == 2
    assert row["cost"] == pytest.approx(0.025)
    assert row["ttft_ms"] is not None and row["latency_ms"] >= row["ttft_ms"]
    assert row["backend"] == "emu" and row["route"] == "emu/gpt-4o-mini"


async def test_store_down_requests_flow_and_rows_are_counted(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    # A path under a regular file can never be opened as a database.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    url = f"sqlite:///{blocker / 'sub' / 'ledger.db'}"
    config = ops_config(openai_upstream, url, auth=False)
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(gw.url + "/v1/chat/completions", json=chat()) as r:
                assert r.status == 200
        ledger = gw.app.state["ledger"]
        await ledger.flush()
        assert ledger.dropped == 3 and ledger.written == 0
        assert ledger.last_error


async def test_errors_are_recorded_with_status(
    openai_upstream: OpenAIEmulator, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    async with (
        serve_gateway(ops_config(openai_upstream, url)) as gw,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(
            gw.url + "/v1/chat/completions", json=chat("nope/x"), headers=auth(MASTER)
        ) as r:
            assert r.status == 404
        await gw.app.state["ledger"].flush()
        rows = await gw.app.state["store"].usage_rows()
        summary = await gw.app.state["store"].usage_summary(group_by="key_id")
    assert rows[0]["status"] == 404 and rows[0]["key_id"] == "master"
    assert rows[0]["cost"] is None
    assert summary[0]["errors"] == 1 and summary[0]["requests"] == 1


def test_usage_insert_placeholders_per_driver_style() -> None:
    from relaygate.store.db import _placeholders

    assert _placeholders("qmark", 3) == "?, ?, ?"
    assert _placeholders("numeric_dollar", 3) == "$1, $2, $3"
    assert _placeholders("format", 2) == "%s, %s"
    assert _placeholders("pyformat", 2) is None  # such drivers go through SQLAlchemy's insert


@pytest.mark.parametrize("path", ["driver", "sqlalchemy"])
async def test_usage_rows_written_either_way_keep_fields_and_defaults(
    tmp_path: Path, path: str
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'u.db'}")
    if path == "sqlalchemy":
        store._insert_usage = None  # what a driver with named placeholders gets
    try:
        full = {"request_id": "r1", "ts": 1.5, "key_id": "k", "route": "m", "backend": "b",
                "model": "m", "dialect": "openai-chat", "stream": True, "input_tokens": 3,
                "output_tokens": 4, "cache_read_tokens": 0, "cache_write_tokens": 0,
                "reasoning_tokens": 1, "latency_ms": 2.5, "ttft_ms": None, "status": 200,
                "error": None, "attempts": 1, "cost": 0.25}  # fmt: skip
        await store.write_usage([full, {"request_id": "r2", "ts": 2.0, "status": 502}])
        rows = {r["request_id"]: r for r in await store.usage_rows(limit=10)}
    finally:
        await store.close()
    assert rows["r1"]["input_tokens"] == 3 and rows["r1"]["stream"] in (True, 1)
    assert rows["r1"]["cost"] == 0.25 and rows["r1"]["ttft_ms"] is None
    # Left-out fields take the column defaults, as an ORM insert would give them.
    assert rows["r2"]["input_tokens"] == 0 and rows["r2"]["attempts"] == 0
    assert rows["r2"]["stream"] in (False, 0) and rows["r2"]["status"] == 502
