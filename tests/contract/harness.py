"""The fault-matrix harness: one gateway with two or three emulated upstreams per wire dialect,
a route per (strategy, upstream dialect), and a client per dialect that reads answers the way
that dialect's SDK does — with its own small SSE reader, never relaygate's codec.

Every test shares the module's gateway; :meth:`Matrix.reset` puts emulator scripts, key pools
and breakers back between tests, so a test is as independent as if it had its own server.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict
from tests.conftest import RunningGateway, serve_gateway

from relaygate.testing import (
    AnthropicEmulator,
    Emulator,
    Fault,
    GeminiEmulator,
    OpenAIEmulator,
    Reply,
    ResponsesEmulator,
)

KEY = "sk-contract-upstream-0123456789"
SLOW_FIRST_TOKEN = 0.1  # the slow-* routes' first_token timeout (seconds)
HANG = 5.0  # a slow upstream's first_delay: far beyond every timeout, cut short by cancellation

# upstream dialect → (emulator class, backend kind, native model, base_url suffix)
UPSTREAMS: dict[str, tuple[type[Emulator], str, str, str]] = {
    "oai": (OpenAIEmulator, "custom-openai-legacy-compatible", "gpt-4o-mini", "/v1"),
    "rsp": (ResponsesEmulator, "custom-openai-responses-compatible", "gpt-5-mini", "/v1"),
    "ant": (AnthropicEmulator, "custom-anthropic-compatible", "claude-sonnet-4-5", ""),
    "gem": (GeminiEmulator, "gemini", "gemini-2.5-flash", ""),
}
# Events an upstream stream needs before its first text delta has certainly gone out, so
# ``cut_after=FIRST_TEXT[u]`` breaks a stream whose first byte already reached the client.
FIRST_TEXT = {"oai": 3, "rsp": 6, "ant": 5, "gem": 2}
STRATEGIES = ("fallback", "balance", "race", "hedge", "consensus")
LONG = "one two three four five six seven eight nine ten"


# ----------------------------------------------------------------------------- clients


@dataclass
class SSE:
    event: str | None
    data: str


def read_sse(raw: bytes) -> list[SSE]:
    """Blocks separated by a blank line; ``event:`` and ``data:`` fields (data lines joined)."""
    text = raw.decode().replace("\r\n", "\n")
    out: list[SSE] = []
    for block in text.split("\n\n"):
        event: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            out.append(SSE(event, "\n".join(data)))
    return out


@dataclass
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    @property
    def backend(self) -> str:
        return self.headers.get("x-relaygate-backend", "")

    @property
    def attempts(self) -> int:
        return int(self.headers["x-relaygate-attempts"])


class Client:
    """How one client dialect asks, and how its SDK reads answers, errors and broken streams."""

    name = ""
    streams = True  # has a non-stream form too (every dialect does)

    def path(self, model: str, stream: bool) -> str:
        raise NotImplementedError

    def body(self, model: str, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    headers: dict[str, str] = {}

    def text(self, body: bytes) -> str:
        """The answer's text from a whole (non-stream) body."""
        raise NotImplementedError

    def error(self, status: int, body: bytes) -> str:
        """Check a whole error body is this dialect's error shape; return its message."""
        raise NotImplementedError

    def stream_text(self, raw: bytes) -> str:
        """Check a stream ended properly (its dialect's terminal event); return the text."""
        raise NotImplementedError

    def stream_error(self, raw: bytes) -> str:
        """Check a stream ended with exactly one terminal error event, last, and no success
        terminal before it; return the error message."""
        raise NotImplementedError


def _loads(data: str | bytes) -> Any:
    return json.loads(data)


class ChatClient(Client):
    name = "openai-chat"

    def path(self, model: str, stream: bool) -> str:
        return "/v1/chat/completions"

    def body(self, model: str, stream: bool) -> dict[str, Any]:
        return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}

    def text(self, body: bytes) -> str:
        return str(_loads(body)["choices"][0]["message"]["content"])

    def error(self, status: int, body: bytes) -> str:
        err = _loads(body)["error"]
        assert isinstance(err["type"], str) and "param" in err and "code" in err, err
        return str(err["message"])

    def _chunks(self, raw: bytes) -> list[Any]:
        events = read_sse(raw)
        assert events and events[-1].data == "[DONE]", raw[-300:]
        assert sum(e.data == "[DONE]" for e in events) == 1, raw[-300:]
        return [_loads(e.data) for e in events[:-1]]

    def stream_text(self, raw: bytes) -> str:
        chunks = self._chunks(raw)
        assert not any("error" in c for c in chunks), raw[-300:]
        assert any(ch.get("finish_reason") for c in chunks for ch in c["choices"]), raw[-300:]
        return "".join(
            ch["delta"].get("content") or "" for c in chunks for ch in c["choices"] if "delta" in ch
        )

    def stream_error(self, raw: bytes) -> str:
        # The openai SDK raises APIError on the first chunk that has an "error" key.
        chunks = self._chunks(raw)
        errors = [i for i, c in enumerate(chunks) if "error" in c]
        assert errors == [len(chunks) - 1], raw[-400:]
        assert not any(ch.get("finish_reason") for c in chunks[:-1] for ch in c["choices"])
        err = chunks[-1]["error"]
        assert isinstance(err["type"], str) and err["message"], err
        return str(err["message"])


class ResponsesClient(Client):
    name = "openai-responses"

    def path(self, model: str, stream: bool) -> str:
        return "/v1/responses"

    def body(self, model: str, stream: bool) -> dict[str, Any]:
        return {"model": model, "input": "hi", "stream": stream}

    def text(self, body: bytes) -> str:
        obj = _loads(body)
        assert obj["status"] == "completed", obj
        return "".join(
            part["text"]
            for item in obj["output"]
            if item["type"] == "message"
            for part in item["content"]
            if part["type"] == "output_text"
        )

    def error(self, status: int, body: bytes) -> str:
        err = _loads(body)["error"]
        assert isinstance(err["type"], str) and "code" in err, err
        return str(err["message"])

    def _events(self, raw: bytes) -> list[tuple[str, Any]]:
        out = []
        for e in read_sse(raw):
            data = _loads(e.data)
            assert e.event == data["type"], e  # the SDK dispatches on the data's type
            out.append((data["type"], data))
        seqs = [d["sequence_number"] for _, d in out if "sequence_number" in d]
        assert seqs == sorted(set(seqs)), seqs  # strictly increasing
        assert [k for k, _ in out].count("response.created") == 1, raw[:400]
        return out

    def stream_text(self, raw: bytes) -> str:
        events = self._events(raw)
        assert events[-1][0] == "response.completed", raw[-300:]
        return "".join(d["delta"] for k, d in events if k == "response.output_text.delta")

    def stream_error(self, raw: bytes) -> str:
        events = self._events(raw)
        kinds = [k for k, _ in events]
        assert kinds[-1] == "response.failed", raw[-400:]
        assert kinds.count("response.failed") == 1 and "response.completed" not in kinds
        assert "error" not in kinds, kinds
        response = events[-1][1]["response"]
        assert response["status"] == "failed" and isinstance(response["error"]["code"], str)
        return str(response["error"]["message"])


class AnthropicClient(Client):
    name = "anthropic"
    headers = {"anthropic-version": "2023-06-01"}

    def path(self, model: str, stream: bool) -> str:
        return "/v1/messages"

    def body(self, model: str, stream: bool) -> dict[str, Any]:
        return {
            "model": model,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": stream,
        }

    def text(self, body: bytes) -> str:
        obj = _loads(body)
        assert obj["type"] == "message", obj
        return "".join(b["text"] for b in obj["content"] if b["type"] == "text")

    def error(self, status: int, body: bytes) -> str:
        obj = _loads(body)
        assert obj["type"] == "error" and isinstance(obj["error"]["type"], str), obj
        return str(obj["error"]["message"])

    def _events(self, raw: bytes) -> list[tuple[str, Any]]:
        out = []
        for e in read_sse(raw):
            data = _loads(e.data)
            assert e.event == data["type"], e
            out.append((data["type"], data))
        assert out and out[0][0] == "message_start", raw[:300]
        return out

    def stream_text(self, raw: bytes) -> str:
        events = self._events(raw)
        assert events[-1][0] == "message_stop", raw[-300:]
        assert not any(k == "error" for k, _ in events)
        return "".join(
            d["delta"]["text"]
            for k, d in events
            if k == "content_block_delta" and d["delta"]["type"] == "text_delta"
        )

    def stream_error(self, raw: bytes) -> str:
        # The anthropic SDK raises APIStatusError on `event: error`.
        events = self._events(raw)
        kinds = [k for k, _ in events]
        assert kinds[-1] == "error" and kinds.count("error") == 1, raw[-400:]
        assert "message_stop" not in kinds and "message_delta" not in kinds, kinds
        err = events[-1][1]["error"]
        assert isinstance(err["type"], str) and err["message"], err
        return str(err["message"])


class GeminiClient(Client):
    """``:generateContent`` and ``:streamGenerateContent?alt=sse`` (or, with ``sse=False``, the
    JSON-array stream google-genai's REST transport reads without ``alt=sse``)."""

    def __init__(self, sse: bool = True) -> None:
        self.sse = sse
        self.name = "gemini" if sse else "gemini-array"

    def path(self, model: str, stream: bool) -> str:
        if not stream:
            return f"/v1beta/models/{model}:generateContent"
        return f"/v1beta/models/{model}:streamGenerateContent" + ("?alt=sse" if self.sse else "")

    def body(self, model: str, stream: bool) -> dict[str, Any]:
        return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

    @staticmethod
    def _text(chunk: Any) -> str:
        return "".join(
            p.get("text", "")
            for c in chunk.get("candidates") or []
            for p in (c.get("content") or {}).get("parts") or []
            if not p.get("thought")
        )

    def text(self, body: bytes) -> str:
        return self._text(_loads(body))

    def error(self, status: int, body: bytes) -> str:
        err = _loads(body)["error"]
        assert err["code"] == status and isinstance(err["status"], str), err
        return str(err["message"])

    def _chunks(self, raw: bytes) -> list[Any]:
        if self.sse:
            return [_loads(e.data) for e in read_sse(raw)]
        chunks = _loads(raw)  # the whole stream must stay one valid JSON array
        assert isinstance(chunks, list), raw[:300]
        return chunks

    @staticmethod
    def _finished(chunk: Any) -> bool:
        return any(c.get("finishReason") for c in chunk.get("candidates") or [])

    def stream_text(self, raw: bytes) -> str:
        chunks = self._chunks(raw)
        assert chunks and self._finished(chunks[-1]), raw[-300:]
        assert not any("error" in c for c in chunks), raw[-300:]
        return "".join(self._text(c) for c in chunks)

    def stream_error(self, raw: bytes) -> str:
        chunks = self._chunks(raw)
        errors = [i for i, c in enumerate(chunks) if "error" in c]
        assert errors == [len(chunks) - 1], raw[-400:]
        assert not any(self._finished(c) for c in chunks), raw[-400:]
        err = chunks[-1]["error"]
        assert isinstance(err["code"], int) and isinstance(err["status"], str), err
        return str(err["message"])


CLIENTS: dict[str, Client] = {
    c.name: c
    for c in (
        ChatClient(),
        ResponsesClient(),
        AnthropicClient(),
        GeminiClient(),
        GeminiClient(False),
    )
}
# The client dialect each upstream dialect speaks natively (same → the byte relay).
NATIVE = {"oai": "openai-chat", "rsp": "openai-responses", "ant": "anthropic", "gem": "gemini"}


def path_kind(client: str, upstream: str) -> str:
    return "relay" if NATIVE[upstream] == client.removesuffix("-array") else "translated"


# ----------------------------------------------------------------------------- the gateway


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _backend(bid: str, kind: str, base_url: str, native: str) -> dict[str, Any]:
    return {
        "id": bid,
        "kind": kind,
        "config": {
            "backend_prefix": bid,
            "base_url": base_url,
            "api_key": KEY,
            "auth_cooldown": 0,  # a scripted 401 must not bench the key for later tests
            "models": {"items": [{"native_id": native}]},
        },
    }


@dataclass
class Matrix:
    gw: RunningGateway
    http: aiohttp.ClientSession
    ups: dict[str, list[Emulator]] = field(default_factory=dict)  # dialect → [a, b, c]

    def reset(self) -> None:
        for emulators in self.ups.values():
            for e in emulators:
                e._script.clear()
                e.requests.clear()
                e.disconnects = 0
        for backend in self.gw.gateway.backends.values():
            for key in backend.keys.states:  # type: ignore[attr-defined]
                key.cooldown_until = 0.0
        state = self.gw.gateway.router.state
        state.breakers.clear()
        state.stats.clear()

    async def ask(
        self, client: str, model: str, *, stream: bool, timeout: float | None = None
    ) -> Answer:
        c = CLIENTS[client]
        async with self.http.post(
            self.gw.url + c.path(model, stream),
            json=c.body(model, stream),
            headers=c.headers,
            timeout=aiohttp.ClientTimeout(total=timeout or 20),
        ) as r:
            return Answer(r.status, r.headers.copy(), await r.read())


def config(ups: dict[str, list[Emulator]]) -> dict[str, Any]:
    backends: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    dead = _dead_port()
    for u, emulators in ups.items():
        _cls, kind, native, suffix = UPSTREAMS[u]
        ids = [f"{n}{u}" for n in "abc"]
        for bid, e in zip(ids, emulators, strict=True):
            backends.append(_backend(bid, kind, e.base_url + suffix, native))
        backends.append(_backend(f"dead{u}", kind, f"http://127.0.0.1:{dead}{suffix}", native))
        pair = [f"{ids[0]}/{native}", f"{ids[1]}/{native}"]
        for s in STRATEGIES:
            route: dict[str, Any] = {"name": f"{s}-{u}", "strategy": s, "targets": pair}
            if s == "balance":
                route["balance"] = "least_busy"  # ties keep the configured order
            elif s == "hedge":
                route["hedge_delay"] = HANG  # hedge only when the first attempt fails outright
            elif s == "consensus":
                route["targets"] = [*pair, f"{ids[2]}/{native}"]
            routes.append(route)
        routes.append({"name": f"dead-{u}", "targets": [f"dead{u}/{native}", pair[1]]})
        routes.append(
            {
                "name": f"slow-{u}",
                "targets": pair,
                "timeouts": {"first_token": SLOW_FIRST_TOKEN, "connect": 1, "total": 30},
            }
        )
        routes.append(
            {"name": f"fasthedge-{u}", "strategy": "hedge", "targets": pair, "hedge_delay": 0.02}
        )
    return {
        "plugins": {"backends": backends},
        "routes": routes,
        "retry": {"attempts": 1},
        "breaker": {"failure_threshold": 10_000},
    }


@contextlib.asynccontextmanager
async def matrix() -> AsyncIterator[Matrix]:
    async with contextlib.AsyncExitStack() as stack:
        ups: dict[str, list[Emulator]] = {}
        for u, (cls, *_rest) in UPSTREAMS.items():
            ups[u] = [await stack.enter_async_context(cls(api_key=KEY)) for _ in range(3)]
        gw = await stack.enter_async_context(serve_gateway(config(ups)))
        # A fresh connection per request: on a reused loopback connection each response
        # stalls ~40 ms (delayed ACK against a two-write response), which would dominate.
        connector = aiohttp.TCPConnector(force_close=True)
        http = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        yield Matrix(gw, http, ups)


# ----------------------------------------------------------------------------- faults

# Faults that strike before any byte reaches the client: every strategy may fail over.
# (stream-only faults are marked; "slow" and "refused" use their own routes.)
PRE_FAULTS: dict[str, Fault | None] = {
    "500": Fault(status=500),
    "503": Fault(status=503),
    "429": Fault(status=429, retry_after=30),  # beyond retry_after_cap: fail over at once
    "401": Fault(status=401),
    "reset": Fault(reset=True),
    "malformed": Fault(malformed=True),
    "error_in_200": Fault(error_in_200=True, cut_after=0),
    "slow": None,  # Reply(first_delay=HANG) on the slow-* route
    "refused": None,  # the dead-* route
    "empty_stream": Fault(cut_after=0),  # stream only: 200, then closed before any event
}
STREAM_ONLY = {"empty_stream"}


def pre_fault(name: str) -> Fault | Reply | None:
    """What the first target is scripted with (None: the dead-* route needs no script)."""
    if name == "refused":
        return None
    if name == "slow":
        return Reply(first_delay=HANG)
    fault = PRE_FAULTS[name]
    assert fault is not None
    return fault


def route_for(fault: str, upstream: str, strategy: str = "fallback") -> str:
    if fault == "slow":
        return f"slow-{upstream}"
    if fault == "refused":
        return f"dead-{upstream}"
    return f"{strategy}-{upstream}"
