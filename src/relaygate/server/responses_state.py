"""``previous_response_id`` against any backend, and ``GET``/``DELETE /v1/responses/{id}``.

OpenAI keeps Responses conversations server-side; most backends keep nothing. relaygate keeps
each stored response — the whole input that produced it (earlier turns already expanded) and its
output items — in a :class:`ConversationStore` with a TTL, and expands ``previous_response_id``
into ``input`` before routing. ``store: false`` keeps nothing. When every target of the route is
a Responses upstream that keeps state itself (``openai``, or a compatible server configured with
``stores_responses: true``), the request passes through untouched.

What a client sees is captured from the bytes relaygate sends it (the JSON body or the
``response.completed`` event), so the fast path and the translated path store the same thing.

Config (optional)::

    responses: {store: memory, ttl_seconds: 86400, max_entries: 10000}
    responses: {store: sqlite, path: relaygate-responses.db}

The store is a two-method-plus-one protocol so the ops store can take over later.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from relaygate import dialects
from relaygate.canonical import ErrorKind, GatewayError
from relaygate.config import Config, pydantic_problems
from relaygate.dialects.sse import SSEDecoder
from relaygate.server.http import Message, Receive, Scope, Send
from relaygate.server.pipeline import RequestInfo, generate

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)

DEFAULT_TTL = 24 * 3600.0
DEFAULT_MAX_ENTRIES = 10_000


@dataclass(slots=True)
class StoredResponse:
    id: str
    input: list[Any]  # every input item of the conversation up to this response
    output: list[Any]  # the response's output items
    response: dict[str, Any]  # the object the client received
    created: float = 0.0


class ConversationStore(Protocol):
    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def put(self, entry: StoredResponse) -> None: ...

    async def delete(self, response_id: str) -> bool: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """An LRU with a TTL. ``clock`` is injectable for tests."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._data: OrderedDict[str, tuple[float, StoredResponse]] = OrderedDict()

    async def get(self, response_id: str) -> StoredResponse | None:
        hit = self._data.get(response_id)
        if hit is None:
            return None
        expires, entry = hit
        if expires <= self.clock():
            del self._data[response_id]
            return None
        self._data.move_to_end(response_id)
        return entry

    async def put(self, entry: StoredResponse) -> None:
        self._data[entry.id] = (self.clock() + self.ttl, entry)
        self._data.move_to_end(entry.id)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def delete(self, response_id: str) -> bool:
        return self._data.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._data)

    async def aclose(self) -> None:
        self._data.clear()


class SqliteStore:
    """A SQLite file (survives restarts). Queries are tiny; they run in a worker thread."""

    def __init__(
        self,
        path: str,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS relaygate_responses "
            "(id TEXT PRIMARY KEY, expires REAL NOT NULL, data BLOB NOT NULL)"
        )
        self._lock = asyncio.Lock()

    async def _run(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        async with self._lock:
            return await asyncio.to_thread(lambda: self._db.execute(sql, args).fetchall())

    async def get(self, response_id: str) -> StoredResponse | None:
        rows = await self._run(
            "SELECT data FROM relaygate_responses WHERE id = ? AND expires > ?",
            (response_id, self.clock()),
        )
        if not rows:
            return None
        data = orjson.loads(rows[0][0])
        return StoredResponse(
            data["id"], data["input"], data["output"], data["response"], data["created"]
        )

    async def put(self, entry: StoredResponse) -> None:
        data = orjson.dumps(
            {
                "id": entry.id,
                "input": entry.input,
                "output": entry.output,
                "response": entry.response,
                "created": entry.created,
            }
        )
        now = self.clock()
        await self._run(
            "INSERT OR REPLACE INTO relaygate_responses (id, expires, data) VALUES (?, ?, ?)",
            (entry.id, now + self.ttl, data),
        )
        await self._run("DELETE FROM relaygate_responses WHERE expires <= ?", (now,))

    async def delete(self, response_id: str) -> bool:
        before = await self._run("SELECT 1 FROM relaygate_responses WHERE id = ?", (response_id,))
        await self._run("DELETE FROM relaygate_responses WHERE id = ?", (response_id,))
        return bool(before)

    async def aclose(self) -> None:
        self._db.close()


class ResponsesConfig(BaseModel):
    """The ``responses:`` section of relaygate.yaml."""

    model_config = ConfigDict(extra="forbid")
    store: Literal["memory", "sqlite"] = "memory"
    ttl_seconds: float = Field(DEFAULT_TTL, gt=0)
    max_entries: int = Field(DEFAULT_MAX_ENTRIES, ge=1)
    path: str = Field("relaygate-responses.db", min_length=1)


def problems(config: Config) -> list[str]:
    """The ``responses:`` section's problems, one line each."""
    try:
        ResponsesConfig.model_validate(config.responses)
    except ValidationError as exc:
        return pydantic_problems(exc, config.responses, "responses")
    return []


def store_from_config(section: dict[str, Any]) -> ConversationStore:
    """Build the store from the ``responses:`` config section; ValueError names the field."""
    try:
        cfg = ResponsesConfig.model_validate(section)
    except ValidationError as exc:
        raise ValueError("; ".join(pydantic_problems(exc, section, "responses"))) from None
    if cfg.store == "sqlite":
        return SqliteStore(cfg.path, ttl=cfg.ttl_seconds)
    return MemoryStore(ttl=cfg.ttl_seconds, max_entries=cfg.max_entries)


# --------------------------------------------------------------------------- the request path


def _as_items(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    return list(raw)


def _keeps_state(backend: Any) -> bool:
    speaks = backend.dialect == dialects.OPENAI_RESPONSES or dialects.OPENAI_RESPONSES in getattr(
        backend, "also_speaks", ()
    )
    return speaks and bool(getattr(backend, "stores_responses", False))


def not_found(response_id: str) -> GatewayError:
    return GatewayError(
        ErrorKind.NOT_FOUND,
        f"Previous response with id '{response_id}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


class _Capture:
    """Wraps ``send`` and keeps the Responses object the client receives."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.streaming = False
        self._body = bytearray()
        self._decoder: SSEDecoder | None = None
        self.response: dict[str, Any] | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", []):
                if name == b"content-type" and value.startswith(b"text/event-stream"):
                    self.streaming = True
                    self._decoder = SSEDecoder()
        elif kind == "http.response.body" and self.status == 200:
            chunk = message.get("body", b"")
            if self._decoder is not None:
                if self.response is None and chunk:
                    self._scan(chunk)
            else:
                self._body.extend(chunk)
        await self._send(message)

    def _scan(self, chunk: bytes) -> None:
        assert self._decoder is not None
        for event in self._decoder.feed(chunk):
            if event.event == "response.completed" or (
                event.event is None and '"response.completed"' in event.data
            ):
                try:
                    obj = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(obj, dict) and isinstance(obj.get("response"), dict):
                    self.response = obj["response"]

    def result(self) -> dict[str, Any] | None:
        if self.streaming or self.status != 200:
            return self.response
        try:
            obj = orjson.loads(bytes(self._body))
        except orjson.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None


class ResponsesState:
    def __init__(self, store: ConversationStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def run(
        self, app: RelayApp, scope: Scope, receive: Receive, send: Send, info: RequestInfo
    ) -> None:
        body = info.body
        previous = body.get("previous_response_id")
        history: list[Any] = []
        if previous is not None:
            plan = app.gateway.router.resolve(info.model)
            entry = await self.store.get(previous)
            if all(_keeps_state(t.backend) for t in plan.targets):
                if entry is not None:  # kept for our own GET and a later non-stateful hop
                    history = entry.input + entry.output
            else:
                if entry is None:
                    raise not_found(previous)
                history = entry.input + entry.output
                expanded = {k: v for k, v in body.items() if k != "previous_response_id"}
                expanded["input"] = history + _as_items(body.get("input"))
                info.body = expanded
                log.debug("responses: expanded %s (%d items)", previous, len(history))
        if body.get("store") is False:
            await generate(app, scope, receive, send, info)
            return
        capture = _Capture(send)
        await generate(app, scope, receive, capture, info)
        response = capture.result()
        if response is None or not isinstance(response.get("id"), str):
            return
        if response.get("status") not in (None, "completed", "incomplete"):
            return  # failed responses are not a conversation to continue
        output = response.get("output")
        await self.store.put(
            StoredResponse(
                id=response["id"],
                input=history + _as_items(body.get("input")),
                output=list(output) if isinstance(output, list) else [],
                response=response,
                created=self.clock(),
            )
        )

    # ------------------------------------------------------------------ GET / DELETE

    async def get_route(self, request: StarletteRequest) -> StarletteResponse:
        response_id = request.path_params["response_id"]
        entry = await self.store.get(response_id)
        if entry is None:
            return _error(
                GatewayError(ErrorKind.NOT_FOUND, f"Response with id '{response_id}' not found.")
            )
        return StarletteResponse(orjson.dumps(entry.response), media_type="application/json")

    async def input_items_route(self, request: StarletteRequest) -> StarletteResponse:
        response_id = request.path_params["response_id"]
        entry = await self.store.get(response_id)
        if entry is None:
            return _error(
                GatewayError(ErrorKind.NOT_FOUND, f"Response with id '{response_id}' not found.")
            )
        items = [i for i in entry.input if isinstance(i, dict)]
        body = {"object": "list", "data": items, "has_more": False}
        return StarletteResponse(orjson.dumps(body), media_type="application/json")

    async def delete_route(self, request: StarletteRequest) -> StarletteResponse:
        response_id = request.path_params["response_id"]
        if not await self.store.delete(response_id):
            return _error(
                GatewayError(ErrorKind.NOT_FOUND, f"Response with id '{response_id}' not found.")
            )
        body = {"id": response_id, "object": "response.deleted", "deleted": True}
        return StarletteResponse(orjson.dumps(body), media_type="application/json")


def _error(err: GatewayError) -> StarletteResponse:
    body = dialects.get(dialects.OPENAI_RESPONSES).render_error(err)
    return StarletteResponse(body, status_code=err.status, media_type="application/json")


def install(app: RelayApp) -> None:
    section = getattr(app.gateway.config, "responses", None) or {}
    state = ResponsesState(store_from_config(section))
    app.state["responses_state"] = state
    app.routes.append(Route("/v1/responses/{response_id}", state.get_route, methods=["GET"]))
    app.routes.append(Route("/v1/responses/{response_id}", state.delete_route, methods=["DELETE"]))
    app.routes.append(
        Route("/v1/responses/{response_id}/input_items", state.input_items_route, methods=["GET"])
    )
    app.shutdown_callbacks.append(state.store.aclose)
