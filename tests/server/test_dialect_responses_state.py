"""Responses conversation state: expansion of previous_response_id, store: false, TTL, the
SQLite store and pass-through to upstreams that keep state themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.conftest import serve_gateway
from tests.e2e.upstreams import KEY, upstreams

from relaygate.server.responses_state import (
    MemoryStore,
    SqliteStore,
    StoredResponse,
    store_from_config,
)
from relaygate.testing import Reply
from relaygate.testing.responses_emulator import ResponsesEmulator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _entry(rid: str) -> StoredResponse:
    return StoredResponse(
        rid, [{"role": "user", "content": "q"}], [{"type": "message"}], {"id": rid}
    )


async def test_memory_store_ttl_and_lru() -> None:
    clock = Clock()
    store = MemoryStore(ttl=60, max_entries=2, clock=clock)
    await store.put(_entry("a"))
    await store.put(_entry("b"))
    assert (await store.get("a")) is not None  # touch a: b is now the oldest
    await store.put(_entry("c"))
    assert await store.get("b") is None and await store.get("a") is not None
    clock.now += 61
    assert await store.get("a") is None and len(store) == 1
    assert await store.delete("c") is True and await store.delete("c") is False


async def test_sqlite_store_survives_reopen(tmp_path: Path) -> None:
    clock = Clock()
    path = str(tmp_path / "r.db")
    store = SqliteStore(path, ttl=60, clock=clock)
    await store.put(_entry("resp_1"))
    await store.aclose()
    again = SqliteStore(path, ttl=60, clock=clock)
    got = await again.get("resp_1")
    assert got is not None and got.input == [{"role": "user", "content": "q"}]
    clock.now += 61
    assert await again.get("resp_1") is None
    await again.aclose()


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"store": "redis"}, "responses.store"),
        ({"ttl_seconds": 0}, "responses.ttl_seconds"),
        ({"max_entries": "many"}, "responses.max_entries"),
    ],
)
def test_bad_config_names_the_field(section: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        store_from_config(section)


async def test_chain_of_three_turns_and_store_false(tmp_path: Path) -> None:
    async with upstreams() as up:
        config = up.config(responses={"store": "sqlite", "path": str(tmp_path / "s.db")})
        async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:

            async def ask(model: str, text: str, **extra: Any) -> dict[str, Any]:
                async with http.post(
                    gw.url + "/v1/responses", json={"model": model, "input": text, **extra}
                ) as r:
                    assert r.status == 200, await r.text()
                    body: dict[str, Any] = await r.json()
                    return body

            up.oai.script(Reply(text="A1"), Reply(text="A2"), Reply(text="A3"))
            r1 = await ask("oai/gpt-4o-mini", "Q1")
            # turn 2 streamed: the stored object comes from response.completed
            async with http.post(
                gw.url + "/v1/responses",
                json={
                    "model": "oai/gpt-4o-mini",
                    "input": "Q2",
                    "previous_response_id": r1["id"],
                    "stream": True,
                },
            ) as r:
                text = await r.text()
            completed = [
                json.loads(line[6:])
                for line in text.splitlines()
                if line.startswith("data: ") and "response.completed" in line
            ]
            r2_id = completed[-1]["response"]["id"]
            r3 = await ask("oai/gpt-4o-mini", "Q3", previous_response_id=r2_id)
            assert r3["output"][0]["content"][0]["text"] == "A3"
            msgs = up.oai.requests[-1].json["messages"]
            assert [(m["role"], m["content"]) for m in msgs] == [
                ("user", "Q1"),
                ("assistant", "A1"),
                ("user", "Q2"),
                ("assistant", "A2"),
                ("user", "Q3"),
            ]
            # store: false keeps nothing
            up.oai.script(Reply(text="secret"))
            r4 = await ask("oai/gpt-4o-mini", "Q4", store=False)
            async with http.get(gw.url + f"/v1/responses/{r4['id']}") as r:
                assert r.status == 404
            async with http.post(
                gw.url + "/v1/responses",
                json={"model": "oai/gpt-4o-mini", "input": "x", "previous_response_id": r4["id"]},
            ) as r:
                assert r.status == 404
                err = (await r.json())["error"]
                assert err["param"] == "previous_response_id" and r4["id"] in err["message"]
            # GET, input_items and DELETE of a stored one
            async with http.get(gw.url + f"/v1/responses/{r3['id']}") as r:
                assert (await r.json())["id"] == r3["id"]
            async with http.get(gw.url + f"/v1/responses/{r3['id']}/input_items") as r:
                assert len((await r.json())["data"]) == 5
            async with http.delete(gw.url + f"/v1/responses/{r3['id']}") as r:
                assert (await r.json())["deleted"] is True
            async with http.get(gw.url + f"/v1/responses/{r3['id']}") as r:
                assert r.status == 404


async def test_stateless_responses_upstream_gets_expanded_stateful_gets_id() -> None:
    async with ResponsesEmulator(api_key=KEY) as rsp:

        def backend(bid: str, **extra: Any) -> dict[str, Any]:
            return {
                "id": bid,
                "kind": "custom-openai-responses-compatible",
                "config": {
                    "backend_prefix": bid,
                    "base_url": rsp.base_url + "/v1",
                    "api_key": KEY,
                    **extra,
                },
            }

        config = {
            "plugins": {"backends": [backend("plain"), backend("keeps", stores_responses=True)]}
        }
        async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
            for prefix, keeps in (("plain", False), ("keeps", True)):
                async with http.post(
                    gw.url + "/v1/responses", json={"model": f"{prefix}/gpt-5-mini", "input": "one"}
                ) as r:
                    first = await r.json()
                async with http.post(
                    gw.url + "/v1/responses",
                    json={
                        "model": f"{prefix}/gpt-5-mini",
                        "input": "two",
                        "previous_response_id": first["id"],
                    },
                ) as r:
                    assert r.status == 200
                sent = rsp.requests[-1].json
                if keeps:
                    assert sent["previous_response_id"] == first["id"] and sent["input"] == "two"
                else:
                    assert "previous_response_id" not in sent
                    assert sent["input"][0] == {"role": "user", "content": "one"}
                    assert sent["input"][-1] == {"role": "user", "content": "two"}
