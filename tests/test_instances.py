"""Two relaygate instances sharing Redis and Postgres keep one RPM limit and one ledger."""

from __future__ import annotations

import aiohttp
import pytest
from tests.conftest import serve_gateway
from tests.opskit import (
    MASTER,
    PG_URL,
    REDIS_URL,
    auth,
    chat,
    need_postgres,
    need_redis,
    ops_config,
)

from relaygate.store import Store
from relaygate.testing import OpenAIEmulator

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def test_two_instances_share_one_rpm_limit_and_one_ledger(
    openai_upstream: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_postgres()
    need_redis()
    monkeypatch.setenv("RG_TEST_MASTER", MASTER)
    config = ops_config(openai_upstream, PG_URL, redis={"url": REDIS_URL})
    async with serve_gateway(config) as one, serve_gateway(config) as two:
        store: Store = one.app.state["store"]
        key = await store.create_key("shared", rpm=5)
        statuses: list[int] = []
        async with aiohttp.ClientSession() as http:
            for i in range(10):
                url = (one if i % 2 == 0 else two).url
                async with http.post(
                    url + "/v1/chat/completions", json=chat(), headers=auth(key.key)
                ) as r:
                    statuses.append(r.status)
        assert statuses.count(200) == 5
        assert statuses.count(429) == 5
        assert statuses[:5] == [200] * 5  # the sixth request, whichever instance, is refused
        await one.app.state["ledger"].flush()
        await two.app.state["ledger"].flush()
        rows = await store.usage_rows(key_id=key.id, limit=50)
    assert len(rows) == 10
    assert sorted(r["status"] for r in rows) == [200] * 5 + [429] * 5
    # The key created through one instance authenticates on the other: one key table.
    assert {r["request_id"] for r in rows}.__len__() == 10
