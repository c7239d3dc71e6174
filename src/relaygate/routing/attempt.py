"""One attempt on one target, opened until the first byte the client would see.

An :class:`Outcome` is what strategies juggle: a finished non-stream body, or a stream whose
first chunk has already arrived (so everything before it may still fail over). Both paths —
the same-dialect byte relay and the canonical translation — produce client-dialect bytes, so
strategies never care which one ran.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from relaygate.backends.base import CallContext, HttpBackend
from relaygate.canonical import (
    ErrorEvent,
    ErrorKind,
    GatewayError,
    MessageStart,
    Request,
    Response,
    StreamEvent,
    Usage,
    UsageEvent,
)
from relaygate.dialects import Dialect
from relaygate.dialects.sse import SSEDecoder
from relaygate.redact import redact
from relaygate.routing.router import Target


@dataclass(slots=True)
class Outcome:
    target: Target
    status: int
    body: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    usage: Usage = field(default_factory=Usage)
    response: Response | None = None  # canonical, when the attempt went through translation
    first_token_at: float = 0.0
    completed: bool = False  # stream: reached its proper end
    error: GatewayError | None = None  # stream: how it broke after the first byte
    close: Callable[[], Any] | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # extra response headers
    render: Callable[[Response], bytes] | None = None  # client-dialect renderer (translated)
    # stream: the chunk just relayed ends the client's stream (the upstream's terminal event),
    # so it can go out with the end of the response in one write.
    final: bool = False
    # stream: called once when the relay of ``chunks`` ends (exhausted or closed) — what a
    # wrapping generator would do, without one more generator step per chunk.
    on_end: Callable[[], None] | None = None

    def is_final(self) -> bool:
        return self.final

    def ended(self) -> None:
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            on_end()

    async def aclose(self) -> None:
        if self.close is not None:
            result = self.close()
            if asyncio.iscoroutine(result):
                await result
            self.close = None


@dataclass(slots=True)
class Call:
    """Everything an attempt needs about the client's request."""

    client: Dialect
    body: dict[str, Any]
    stream: bool
    ctx: CallContext
    include_usage: bool = True  # openai-chat clients that did not ask for the usage chunk
    want_canonical: bool = False  # consensus needs canonical responses
    _canonical: Request | None = None

    def canonical(self) -> Request:
        if self._canonical is None:
            self._canonical = self.client.parse_request(self.body)
        self._canonical.stream = self.stream
        return self._canonical


def _stream_error_in(first: bytes, client: Dialect) -> GatewayError | None:
    """An upstream that answers 200 and then an error event (or garbage) as its first chunk."""
    if first.lstrip().startswith(b"{"):
        # A JSON document where an event stream was asked for: an error body under a 200.
        err = client.parse_error(502, first)
        err.message = "upstream answered the stream request with a JSON body: " + redact(
            err.message
        )
        return err
    if b"error" in first:
        events = SSEDecoder().feed(first)
    elif client.NAME == "openai-chat" and _plain_chat_event(first):
        return None
    else:
        # Every dialect's error event says "error"; without it only a garbled first event can
        # be wrong, so the rest of the chunk (often the whole stream) is neither decoded nor
        # parsed twice.
        events = SSEDecoder().feed(_first_event(first))[:1]
    parser = client.make_parser()
    for sse in events:
        for event in parser.feed(sse):
            if isinstance(event, ErrorEvent):
                return event.error
    return None


def _plain_chat_event(first: bytes) -> bool:
    """The first event is one ``data:`` line holding a JSON object: without an "error" in it,
    nothing the Chat stream parser would turn into an error (the common first chunk, checked
    without decoding SSE or building canonical events). Anything else takes the full check."""
    if not first.startswith(b"data:"):
        return False
    event = _first_event(first)
    try:
        return isinstance(orjson.loads(event[5:]), dict)
    except orjson.JSONDecodeError:
        return False


def _first_event(chunk: bytes) -> bytes:
    """``chunk`` up to the end of its first SSE event (all of it when that end is not there)."""
    ends = [i + n for i, n in ((chunk.find(b"\n\n"), 2), (chunk.find(b"\r\n\r\n"), 4)) if i >= 0]
    return chunk[: min(ends)] if ends else chunk


async def open_attempt(call: Call, target: Target) -> Outcome:
    backend = target.backend
    client = call.client
    if call.want_canonical and call.stream:
        # Consensus compares whole answers; it cannot vote on a stream already sent.
        raise GatewayError(
            ErrorKind.INVALID_REQUEST,
            "This model is a consensus route, which answers only whole responses: send "
            "stream: false (or use a fallback/race/hedge route for streaming).",
            param="stream",
            code="consensus_stream_unsupported",
        )
    # A backend may speak more than one wire dialect (``openai``: Chat and Responses).
    same = backend.dialect == client.NAME or client.NAME in getattr(backend, "also_speaks", ())
    if same and not call.want_canonical:
        return await _open_raw(call, target)
    return await _open_translated(call, target)


async def _open_raw(call: Call, target: Target) -> Outcome:
    body = dict(call.body)
    body["model"] = target.native_id
    client = call.client
    strip_usage = False
    if call.stream and client.NAME == "openai-chat" and not call.include_usage:
        # The ledger needs usage: ask for it, and keep the extra chunk from the client.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        strip_usage = True
    reply = await target.backend.forward(body, stream=call.stream, ctx=call.ctx)
    if not call.stream:
        assert reply.body is not None
        try:
            obj = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.UPSTREAM,
                "upstream returned a body that is not JSON",
                backend=target.backend.id,
            ) from None
        try:
            # parse_response's checks (a 200 that carries an error raises) and the usage, no
            # canonical conversion: the client gets the upstream's bytes.
            usage = client.response_usage(obj)
        except GatewayError as err:
            err.backend = err.backend or target.backend.id  # "every target failed — b: …"
            err.message = redact(err.message)
            raise
        return Outcome(
            target,
            reply.status,
            body=reply.body,
            usage=usage,
            first_token_at=time.monotonic(),
            completed=True,
        )
    assert reply.chunks is not None
    chunks = reply.chunks
    try:
        async with asyncio.timeout(call.ctx.timeouts.first_token):
            first = await anext(chunks)
            while not first.strip():
                first += await anext(chunks)
            if client.CONTENT_TYPE_STREAM == ARRAY_CT:
                first = await _first_array_element(first, chunks, client, target.backend.id)
    except StopAsyncIteration:
        reply.close()
        raise GatewayError(
            ErrorKind.UPSTREAM,
            "upstream closed the stream before any event",
            backend=target.backend.id,
        ) from None
    except TimeoutError:
        reply.close()
        raise GatewayError(
            ErrorKind.TIMEOUT, "upstream sent no first token in time", backend=target.backend.id
        ) from None
    except BaseException:
        reply.close()
        raise
    early = _stream_error_in(first, client)
    if early is not None:
        reply.close()
        early.backend = target.backend.id
        raise early
    watch = client.make_watch()
    outcome = Outcome(
        target, 200, usage=watch.usage, first_token_at=time.monotonic(), close=reply.close
    )

    async def relay() -> AsyncIterator[bytes]:
        last = first  # only read when the stream breaks (see _relay_terminal)
        try:
            try:
                watch.feed(first)
                outcome.final = watch.complete
                yield _strip(first) if strip_usage else first
                async for chunk in chunks:
                    last = chunk
                    watch.feed(chunk)
                    outcome.final = watch.complete
                    yield _strip(chunk) if strip_usage else chunk
            except GatewayError as err:
                outcome.error = err
            if watch.complete:
                outcome.completed = True
                if reply.response is not None:
                    reply.response.release()
                outcome.close = None
            elif watch.error is not None and outcome.error is None:
                # The upstream's own terminal error event went out as bytes: the client's
                # stream has ended properly (a second error would not), and the request failed.
                watch.error.message = redact(watch.error.message)
                watch.error.backend = target.backend.id
                outcome.error = watch.error
                owed: bytes = getattr(watch, "owed", b"")
                if owed:
                    yield owed
            else:
                broken = outcome.error or GatewayError(
                    ErrorKind.UPSTREAM, "upstream stream ended before completion"
                )
                outcome.error = broken
                yield _relay_terminal(client, target.native_id, broken, first, last)
        finally:
            outcome.ended()

    outcome.chunks = relay()
    return outcome


def _event_batches(
    backend: Any, request: Request, native_model: str, ctx: CallContext
) -> AsyncIterator[list[StreamEvent]]:
    """The backend's stream as lists of events that arrived together: HTTP backends know
    (:meth:`HttpBackend.stream_batches`); any other stream is one event per list."""
    if type(backend).stream is HttpBackend.stream:
        return backend.stream_batches(request, native_model, ctx)  # type: ignore[no-any-return]
    return _singles(backend.stream(request, native_model, ctx))


async def _singles(events: AsyncIterator[StreamEvent]) -> AsyncIterator[list[StreamEvent]]:
    try:
        async for event in events:
            yield [event]
    finally:
        await _aclose(events)


ARRAY_CT = "application/json"  # Gemini's streamGenerateContent without alt=sse
_ARRAY_LIMIT = 1 << 20
_RESPONSE_ID = re.compile(rb'"response":\{"id":"([^"]+)"')
_SEQUENCE = re.compile(rb'"sequence_number":(\d+)')


async def _first_array_element(
    first: bytes, chunks: AsyncIterator[bytes], client: Dialect, backend: str
) -> bytes:
    """A JSON-array stream (``[{…}\r\n,{…}]``): read until its first element is whole, so
    garbage or an error element fails the attempt before a byte reaches the client (SSE
    streams get the same check from :func:`_stream_error_in`). Raises StopAsyncIteration when
    the upstream ends first, :class:`GatewayError` when the element is garbage or an error."""
    while True:
        body = first.lstrip()
        if not body.startswith(b"["):
            break
        body = body[1:]
        cut = body.find(b"\n,")
        whole = body[:cut] if cut >= 0 else None
        if whole is None and body.rstrip().endswith(b"]"):
            whole = body.rstrip()[:-1]
        if whole is not None:
            try:
                orjson.loads(whole)
            except orjson.JSONDecodeError:
                raise GatewayError(
                    ErrorKind.UPSTREAM,
                    "upstream stream is not a JSON array of responses",
                    backend=backend,
                ) from None
            if whole.lstrip().startswith(b'{"error"'):
                err = client.parse_error(502, whole)
                err.message = redact(err.message)
                err.backend = backend
                raise err
            break
        if len(first) > _ARRAY_LIMIT:
            break
        first += await anext(chunks)
    return first


def _relay_terminal(
    client: Dialect, model: str, err: GatewayError, first: bytes, last: bytes
) -> bytes:
    """The terminal error event of a stream relayed as bytes. A fresh renderer would open the
    stream again; this one continues it: Responses keeps the response id and the sequence
    numbers (no second ``response.created``), a Gemini JSON array stays one array."""
    renderer: Any = client.make_renderer(model)
    if isinstance(getattr(renderer, "seq", None), int) and hasattr(renderer, "started"):
        renderer.started = True
        found = _RESPONSE_ID.search(first)
        renderer.id = found.group(1).decode() if found else "resp_relaygate"
        seqs = _SEQUENCE.findall(last) or _SEQUENCE.findall(first)
        renderer.seq = int(seqs[-1]) + 1 if seqs else 0
    data: bytes = renderer.error(err)
    if client.CONTENT_TYPE_STREAM == ARRAY_CT and data.startswith(b"["):
        data = b"\r\n," + data[1:]  # the relayed array is open: add the error as its last element
    return data


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


_NO_CHOICES = b'"choices":[]'


def _strip(chunk: bytes) -> bytes:
    """``chunk`` without the events that carry ``"choices":[]`` (the usage chunk a client that
    did not ask for it must not see): one scan when there is none, else the events cut out."""
    hit = chunk.find(_NO_CHOICES)
    if hit < 0:
        return chunk
    kept: list[bytes] = []
    pos = 0
    while hit >= 0:
        start = chunk.rfind(b"\n\n", pos, hit)
        kept.append(chunk[pos : start + 2] if start >= 0 else b"")
        end = chunk.find(b"\n\n", hit)
        if end < 0:  # the event goes on in the next chunk: nothing of it goes out
            pos = len(chunk)
            break
        pos = end + 2
        hit = chunk.find(_NO_CHOICES, pos)
    kept.append(chunk[pos:])
    return b"".join(kept)


async def _open_translated(call: Call, target: Target) -> Outcome:
    backend = target.backend
    client = call.client
    request = call.canonical()
    if not call.stream:
        response = await backend.complete(request, target.native_id, call.ctx)
        body = client.render_response(response)
        return Outcome(
            target,
            200,
            body=body,
            usage=response.usage,
            response=response,
            first_token_at=time.monotonic(),
            completed=True,
            render=client.render_response,
        )
    batches = _event_batches(backend, request, target.native_id, call.ctx)
    kwargs: dict[str, Any] = {}
    if client.NAME == "openai-chat":
        kwargs["include_usage"] = call.include_usage
    renderer: Any = client.make_renderer(target.native_id, **kwargs)
    usage = Usage()
    completed = False

    def render(batch: list[StreamEvent]) -> tuple[bytes, GatewayError | None]:
        """Client bytes for events that arrived together (one write, not one per event), and
        the error event that ends the stream, if one came."""
        nonlocal completed
        parts: list[bytes] = []
        for event in batch:
            if isinstance(event, ErrorEvent):
                return b"".join(parts), event.error
            if isinstance(event, UsageEvent):
                usage.merge(event.usage)
            elif isinstance(event, MessageStart):
                if event.usage is not None:
                    usage.merge(event.usage)
            elif event.kind == "message_stop":
                completed = True
            data = renderer.feed(event)
            if data:
                parts.append(data)
        return (parts[0] if len(parts) == 1 else b"".join(parts)), None

    first = b""
    early: GatewayError | None = None  # an error event right after the first bytes
    try:
        async with asyncio.timeout(call.ctx.timeouts.first_token):
            while not first:
                first, early = render(await anext(batches))
                if early is not None and not first:
                    early.backend = early.backend or backend.id
                    raise early
    except StopAsyncIteration:
        await _aclose(batches)
        raise GatewayError(
            ErrorKind.UPSTREAM, "upstream closed the stream before any event", backend=backend.id
        ) from None
    except TimeoutError:
        await _aclose(batches)
        raise GatewayError(
            ErrorKind.TIMEOUT, "upstream sent no first token in time", backend=backend.id
        ) from None
    except BaseException:
        await _aclose(batches)
        raise

    outcome = Outcome(
        target, 200, usage=usage, first_token_at=time.monotonic(), close=lambda: _aclose(batches)
    )

    async def relay() -> AsyncIterator[bytes]:
        try:
            if early is not None:
                outcome.error = early
                yield first + renderer.error(early)
                return
            yield first
            try:
                async for batch in batches:
                    data, err = render(batch)
                    if err is not None:
                        outcome.error = err
                        yield data + renderer.error(err)
                        return
                    if data:
                        yield data
            except GatewayError as err:
                outcome.error = err
                yield renderer.error(err)
                return
            outcome.completed = completed
            if not completed:
                broken = GatewayError(ErrorKind.UPSTREAM, "upstream stream ended before completion")
                outcome.error = broken
                yield renderer.error(broken)
        finally:
            outcome.ended()

    outcome.chunks = relay()
    return outcome
