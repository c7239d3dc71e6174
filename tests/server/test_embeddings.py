from __future__ import annotations

import aiohttp
import openai
import pytest
from tests.conftest import openai_backend, serve_gateway

from relaygate.testing import Fault, OpenAIEmulator


async def test_embeddings_pass_through_with_the_sdk(openai_upstream: OpenAIEmulator) -> None:
    config = {"plugins": {"backends": [openai_backend(openai_upstream)]}}
    async with serve_gateway(config) as gw:
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused")
        result = await client.embeddings.create(
            model="emu/text-embedding-3-small",
            input=["hello", "world"],
            dimensions=4,
            extra_body={"relaygate_never_heard_of_this": 1},
        )
        await client.close()
    assert [len(d.embedding) for d in result.data] == [4, 4]
    sent = openai_upstream.requests[-1]
    assert sent.path == "/v1/embeddings"
    assert sent.json["model"] == "text-embedding-3-small"
    assert sent.json["relaygate_never_heard_of_this"] == 1  # unknown fields survive
    assert sent.headers["authorization"] == "Bearer sk-test-key-123456"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "emu/e"}, "input"),
        ({"model": "emu/e", "input": [{}]}, "input[0]"),
    ],
)
async def test_embeddings_bad_input(
    openai_upstream: OpenAIEmulator, body: dict[str, object], param: str
) -> None:
    config = {"plugins": {"backends": [openai_backend(openai_upstream)]}}
    async with (
        serve_gateway(config) as gw,
        aiohttp.ClientSession() as http,
        http.post(gw.url + "/v1/embeddings", json=body) as r,
    ):
        assert r.status == 400
        assert (await r.json())["error"]["param"] == param


async def test_embeddings_upstream_error_and_unknown_model(openai_upstream: OpenAIEmulator) -> None:
    config = {"plugins": {"backends": [openai_backend(openai_upstream)]}}
    openai_upstream.script(Fault(status=500, message="boom"))
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        async with http.post(gw.url + "/v1/embeddings", json={"model": "emu/e", "input": "x"}) as r:
            assert r.status == 502
            assert "boom" in (await r.json())["error"]["message"]
        async with http.post(
            gw.url + "/v1/embeddings", json={"model": "nope/e", "input": "x"}
        ) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "model_not_found"


class _Recorder:
    def __init__(self) -> None:
        self.records: list[object] = []

    async def before(self, info: object) -> None:
        pass

    async def after_plan(self, info: object, plan: object) -> None:
        pass

    def finish(self, info: object, record: object) -> None:
        self.records.append(record)


async def test_embeddings_are_recorded_like_any_request(openai_upstream: OpenAIEmulator) -> None:
    config = {"plugins": {"backends": [openai_backend(openai_upstream)]}}
    recorder = _Recorder()
    async with serve_gateway(config) as gw, aiohttp.ClientSession() as http:
        gw.app.observers.append(recorder)
        async with http.post(
            gw.url + "/v1/embeddings", json={"model": "emu/e", "input": "abcdefgh"}
        ) as r:
            assert r.status == 200
            assert r.headers["x-relaygate-attempts"] == "1"
    (record,) = recorder.records
    assert record.backend == "emu" and record.status == 200  # type: ignore[attr-defined]
    assert record.usage.input_tokens == 2  # type: ignore[attr-defined]
