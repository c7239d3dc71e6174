"""Garbage in, a clear 4xx out: every client route, fed hypothesis-generated bad input, answers
in its own dialect's error shape with a status below 500 (unless an upstream itself failed) and
never hangs.

The gateway runs in-process (``httpx.ASGITransport``) on one event loop owned by the module
fixture; four echo emulators (one per wire dialect) are its upstreams, so a mutated request that
is still acceptable succeeds through both the fast path and every translation.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relaygate.config import parse_config
from relaygate.gateway import build_gateway
from relaygate.server.app import build_asgi
from relaygate.testing import AnthropicEmulator, GeminiEmulator, OpenAIEmulator, ResponsesEmulator

KEY = "sk-fuzz-upstream-0123456789"
MASTER = "rg-fuzz-master-key-0123456789"
MAX_BODY = 2 * 1024 * 1024
TIMEOUT = 10.0  # per request: an answer later than this is a hang
MODELS = ["eoai/gpt-4o-mini", "ersp/gpt-5-mini", "eant/claude-sonnet-4-5", "egem/gemini-2.5-flash"]
FUZZ = settings(
    max_examples=int(os.environ.get("RELAYGATE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ----------------------------------------------------------------------------- the gateway


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    upstream_requests: int  # requests the emulators received while this one ran


@dataclass
class Gateway:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    emulators: list[Any] = field(default_factory=list)

    def _upstream_count(self) -> int:
        return sum(len(e.requests) for e in self.emulators)

    def send(
        self,
        method: str,
        path: str,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        before = self._upstream_count()

        async def go() -> httpx.Response:
            return await self.client.request(method, path, content=content, headers=headers)

        try:
            r = self.loop.run_until_complete(asyncio.wait_for(go(), TIMEOUT))
        except TimeoutError:
            pytest.fail(f"{method} {path} did not answer within {TIMEOUT} s (a hang)")
        called = self._upstream_count() - before
        for e in self.emulators:  # keep memory flat over hundreds of examples
            e.requests.clear()
        return Answer(r.status_code, r.headers, r.content, called)


def _config(ups: dict[str, Any], db: str) -> dict[str, Any]:
    rows = {
        "oai": ("custom-openai-legacy-compatible", "gpt-4o-mini", "/v1"),
        "rsp": ("custom-openai-responses-compatible", "gpt-5-mini", "/v1"),
        "ant": ("custom-anthropic-compatible", "claude-sonnet-4-5", ""),
        "gem": ("gemini", "gemini-2.5-flash", ""),
    }
    backends = []
    for name, (kind, native, suffix) in rows.items():
        backends.append(
            {
                "id": f"e{name}",
                "kind": kind,
                "config": {
                    "backend_prefix": f"e{name}",
                    "base_url": ups[name].base_url + suffix,
                    "api_key": KEY,
                    "auth_cooldown": 0,
                    "models": {"items": [{"native_id": native}]},
                },
            }
        )
    return {
        "server": {"auth": {"enabled": True}, "max_body_bytes": MAX_BODY, "access_log": False},
        "plugins": {"backends": backends},
        "routes": [{"name": "smart", "targets": [MODELS[0], MODELS[2]]}],
        "retry": {"attempts": 1},
        "breaker": {"failure_threshold": 1_000_000},
        "storage": {"url": db},
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    db = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'fuzz.db'}"
    env = {"RELAYGATE_API_KEY": MASTER}
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()

    async def start() -> Gateway:
        ups = {
            "oai": OpenAIEmulator(api_key=KEY),
            "rsp": ResponsesEmulator(api_key=KEY),
            "ant": AnthropicEmulator(api_key=KEY),
            "gem": GeminiEmulator(api_key=KEY),
        }
        for e in ups.values():
            await stack.enter_async_context(e)
        gateway = build_gateway(parse_config(_config(ups, db), env=env), env=env)
        asgi, inner = build_asgi(gateway)
        await inner.startup()
        stack.push_async_callback(inner.shutdown)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=asgi), base_url="http://relaygate.test"
        )
        stack.push_async_callback(client.aclose)
        return Gateway(loop, client, list(ups.values()))

    try:
        yield loop.run_until_complete(start())
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


# ----------------------------------------------------------------------------- routes

OPENAI, ANTHROPIC, GEMINI = "openai", "anthropic", "gemini"
AUTH = {
    OPENAI: {"authorization": f"Bearer {MASTER}"},
    ANTHROPIC: {"x-api-key": MASTER, "anthropic-version": "2023-06-01"},
    GEMINI: {"x-goog-api-key": MASTER},
}


def chat_body(model: str, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "max_tokens": 16,
        "temperature": 0.5,
        "stream": stream,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
    }


def responses_body(model: str, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "instructions": "be brief",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "max_output_tokens": 16,
        "store": False,
        "stream": stream,
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
    }


def messages_body(model: str, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 16,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": stream,
        "tools": [{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}],
    }


def count_body(model: str, stream: bool) -> dict[str, Any]:
    body = messages_body(model, stream)
    del body["max_tokens"], body["stream"]
    return body


def gemini_body(model: str, stream: bool) -> dict[str, Any]:
    return {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 16, "temperature": 0.5},
        "tools": [{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "object"}}]}],
    }


def gemini_count_body(model: str, stream: bool) -> dict[str, Any]:
    return {"generateContentRequest": {"model": f"models/{model}", **gemini_body(model, stream)}}


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # ``{model}`` is replaced for Gemini, ``{id}`` for GET /v1/responses/{id}
    dialect: str
    body: Any = None  # (model, stream) -> dict, for routes that take a JSON body
    stream: bool = False

    def url(self, model: str = MODELS[0], ident: str = "resp_missing") -> str:
        return self.path.replace("{model}", quote(model, safe="/:")).replace("{id}", ident)


def _gemini_routes(version: str) -> list[Route]:
    base = f"/{version}/models/{{model}}"
    return [
        Route(f"{version}:generate", "POST", f"{base}:generateContent", GEMINI, gemini_body),
        Route(
            f"{version}:stream",
            "POST",
            f"{base}:streamGenerateContent",
            GEMINI,
            gemini_body,
            True,
        ),
        Route(
            f"{version}:stream-sse",
            "POST",
            f"{base}:streamGenerateContent?alt=sse",
            GEMINI,
            gemini_body,
            True,
        ),
        Route(f"{version}:count", "POST", f"{base}:countTokens", GEMINI, gemini_count_body),
    ]


POST_ROUTES = [
    Route("chat", "POST", "/v1/chat/completions", OPENAI, chat_body),
    Route("chat-stream", "POST", "/v1/chat/completions", OPENAI, chat_body, True),
    Route("responses", "POST", "/v1/responses", OPENAI, responses_body),
    Route("responses-stream", "POST", "/v1/responses", OPENAI, responses_body, True),
    Route("messages", "POST", "/v1/messages", ANTHROPIC, messages_body),
    Route("messages-beta", "POST", "/v1/messages?beta=true", ANTHROPIC, messages_body, True),
    Route("count_tokens", "POST", "/v1/messages/count_tokens", ANTHROPIC, count_body),
    *_gemini_routes("v1beta"),
    *_gemini_routes("v1"),
]
GET_ROUTES = [
    Route("responses-get", "GET", "/v1/responses/{id}", OPENAI),
    Route("models", "GET", "/v1/models", OPENAI),
    Route("gemini-models", "GET", "/v1beta/models", GEMINI),
]
ROUTES = {r.name: r for r in [*POST_ROUTES, *GET_ROUTES]}


def _encode(doc: Any) -> bytes:
    # The stdlib encoder, not orjson: it writes what orjson refuses to (integers past 64 bits,
    # NaN, lone surrogates as escapes), and those are inputs a client can send.
    return json.dumps(doc).encode()


def call(
    gw: Gateway, route: Route, body: bytes | None, model: str = MODELS[0], **kw: Any
) -> Answer:
    headers = {**AUTH[route.dialect], "content-type": "application/json", **kw.pop("headers", {})}
    return gw.send(kw.pop("method", route.method), route.url(model, **kw), body, headers)


# ----------------------------------------------------------------------------- checks


def error_shape(dialect: str, status: int, raw: bytes) -> str:
    """The error body parsed as ``dialect``'s error shape; returns its message."""
    body = json.loads(raw)
    if dialect == OPENAI:
        err = body["error"]
        assert set(err) >= {"message", "type", "param", "code"}, body
        assert isinstance(err["type"], str) and err["type"], body
        assert err["param"] is None or isinstance(err["param"], str), body
    elif dialect == ANTHROPIC:
        assert body["type"] == "error", body
        err = body["error"]
        assert isinstance(err["type"], str) and err["type"], body
    else:
        err = body["error"]
        assert err["code"] == status and isinstance(err["status"], str), body
    assert isinstance(err["message"], str) and err["message"], body
    assert MASTER not in err["message"] and KEY not in err["message"], body
    return str(err["message"])


def check(route: Route, answer: Answer) -> None:
    """Below 500 unless an upstream was called (and failed); errors in the route's dialect."""
    if answer.status >= 500:
        assert answer.upstream_requests and answer.status in (502, 503, 504), (
            answer.status,
            answer.body[:600],
        )
    if answer.status >= 400:
        error_shape(route.dialect, answer.status, answer.body)


# ----------------------------------------------------------------------------- strategies

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def mutate(doc: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    """``doc`` with the node at ``path`` replaced by ``value``, deleted, or given an extra key."""
    if not path:
        return value if op == "replace" else doc
    doc = copy.deepcopy(doc)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "extra" and isinstance(parent[last], dict):
        parent[last]["x_fuzz_unknown"] = value
    else:
        parent[last] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Route, str, bytes]:
    route = draw(st.sampled_from(POST_ROUTES))
    model = draw(st.sampled_from(MODELS))
    doc = route.body(model, route.stream)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        doc = mutate(
            doc, path, draw(st.sampled_from(["replace", "delete", "extra"])), draw(json_values)
        )
    return route, model, _encode(doc)


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("route", POST_ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("model", MODELS)
def test_valid_requests_reach_the_echo_upstream(gw: Gateway, route: Route, model: str) -> None:
    """The baseline the fuzz mutates: every valid envelope succeeds through every backend."""
    answer = call(gw, route, _encode(route.body(model, route.stream)), model)
    assert answer.status == 200, answer.body[:600]
    assert (
        answer.upstream_requests >= 1
        or route.name.endswith(":count")
        or route.name == "count_tokens"
    )


@FUZZ
@given(mutated())
@example((ROUTES["chat"], MODELS[1], _encode({**chat_body(MODELS[1], False), "max_tokens": 2**70})))
@example(  # an unhashable role once met a frozenset: TypeError, 500
    (
        ROUTES["chat"],
        MODELS[0],
        _encode(mutate(chat_body(MODELS[0], False), ("messages", 1, "role"), "replace", [])),
    )
)
def test_mutated_envelopes(gw: Gateway, case: tuple[Route, str, bytes]) -> None:
    route, model, body = case
    check(route, call(gw, route, body, model))


NON_JSON = [b"", b"not json", b"{", b'{"model": ', b"\x00\x01\x02", b"\xff\xfe{}", b"null", b"[]"]
garbage = st.one_of(
    st.sampled_from(NON_JSON),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_values.map(_encode),  # JSON of any top-level type
    # Invalid UTF-8 inside an otherwise valid JSON string.
    st.binary(min_size=1, max_size=8).map(lambda b: b'{"model": "' + b + b'", "messages": []}'),
)


@FUZZ
@given(route=st.sampled_from(POST_ROUTES), body=garbage)
@example(route=ROUTES["chat"], body=b"[" * 10_000)
@example(route=ROUTES["messages"], body=b'{"model": "\xff\xfe", "max_tokens": 1, "messages": []}')
def test_garbage_bodies(gw: Gateway, route: Route, body: bytes) -> None:
    answer = call(gw, route, body)
    check(route, answer)
    assert answer.status != 200 or body.startswith(b"{"), answer.body[:300]


CONTENT_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
    "application/json; charset=latin-1",
    "multipart/form-data; boundary=x",
]


@FUZZ
@given(
    route=st.sampled_from(POST_ROUTES),
    content_type=st.sampled_from(CONTENT_TYPES) | st.text(max_size=30).filter(str.isprintable),
    valid=st.booleans(),
)
def test_wrong_content_type(gw: Gateway, route: Route, content_type: str, valid: bool) -> None:
    body = _encode(route.body(MODELS[0], route.stream)) if valid else b"a=1&b=2"
    check(
        route,
        call(gw, route, body, headers={"content-type": content_type.encode("latin-1", "replace")}),
    )


@FUZZ
@given(
    route=st.sampled_from([*POST_ROUTES, *GET_ROUTES]),
    method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST", "HEAD", "OPTIONS"]),
)
def test_wrong_method(gw: Gateway, route: Route, method: str) -> None:
    if method == route.method or (route.name == "responses-get" and method == "DELETE"):
        return
    answer = call(gw, route, b"{}", method=method)
    if method in ("HEAD", "OPTIONS"):
        assert answer.status < 500
        return
    assert 400 <= answer.status < 500, (answer.status, answer.body[:300])
    check(route, answer)


@FUZZ
@given(
    route=st.sampled_from([r for r in POST_ROUTES if r.dialect == GEMINI]),
    model=st.text(min_size=0, max_size=40),
)
@example(route=ROUTES["v1beta:generate"], model="")
@example(route=ROUTES["v1:stream"], model="models/")
def test_gemini_model_segment(gw: Gateway, route: Route, model: str) -> None:
    body = _encode(gemini_body(model, route.stream))
    check(route, call(gw, route, body, model=quote(model, safe="")))


@FUZZ
@given(ident=st.text(max_size=60))
@example(ident="")
def test_response_ids(gw: Gateway, ident: str) -> None:
    route = ROUTES["responses-get"]
    answer = call(gw, route, None, ident=quote(ident, safe=""))
    check(route, answer)
    if ident and "/" not in ident:  # (a trailing slash gets Starlette's redirect)
        assert answer.status == 404, answer.body[:300]


@pytest.mark.parametrize("route", POST_ROUTES, ids=lambda r: r.name)
def test_deep_nesting_and_huge_strings(gw: Gateway, route: Route) -> None:
    # 10,000-deep arrays, as the whole body and as a field value: orjson's recursion limit
    # must turn into a 400, never a RecursionError.
    deep = b"[" * 10_000 + b"]" * 10_000
    check(route, answer := call(gw, route, deep))
    assert answer.status == 400
    doc = route.body(MODELS[0], route.stream)
    raw = _encode({**doc, "x_deep": 0}).replace(b'"x_deep": 0', b'"x_deep": ' + deep)
    check(route, answer := call(gw, route, raw))
    assert answer.status == 400
    # Past what orjson writes (254 levels) but within what it reads (1,024): a 400 at the edge,
    # not a 500 when the body is relayed or translated. Just under the limit: no 500 either.
    for depth, status in ((900, 400), (300, 400), (250, None)):
        nested: Any = "leaf"
        for _ in range(depth):
            nested = [nested]
        for model in MODELS:
            raw = _encode({**doc, "metadata": {"deep": nested}})
            check(route, answer := call(gw, route, raw, model))
            assert status is None or answer.status == status, (depth, answer.body[:300])
    # A body past server.max_body_bytes: 413 in the dialect's shape.
    check(route, answer := call(gw, route, b'{"model": "' + b"x" * MAX_BODY + b'"}'))
    assert answer.status == 413
    # A huge but legal string: the system prompt (the echo upstreams answer the user's text,
    # which would stream back at four characters an event).
    big = _encode(mutate(doc, _system_path(doc), "replace", "word " * 200_000))
    for model in MODELS:
        check(route, call(gw, route, big, model))


def _system_path(doc: Any) -> tuple[Any, ...]:
    for path in _paths(doc):
        node = doc
        for step in path:
            node = node[step]
        if node == "be brief":
            return path
    raise AssertionError(doc)
