"""The default upstream client: HTTP/1.1 over ``asyncio`` protocols with llhttp (httptools).

Why not aiohttp's client: on relaygate's hot path it was the largest single cost (a request
object, header multidicts, a payload writer task and two timers per request — about a quarter
of the gateway's CPU per request in ``bench/``). An LLM upstream needs a narrow slice of
HTTP/1.1: one request with a bytes body, a response read whole or as it arrives, keep-alive.
This client does exactly that:

* one write per request (head and body together), headers as given — nothing added but
  ``Host``, ``Content-Length`` and, for non-streaming requests, ``Accept-Encoding: gzip,
  deflate`` (streams are asked for uncompressed: a compressing proxy may hold SSE events back);
* responses framed by Content-Length, chunked encoding or connection close, parsed in C;
  gzip/deflate bodies are inflated as they arrive;
* a LIFO pool of idle keep-alive connections per origin, no cap (fd limits are the bound),
  idle connections dropped after ``keepalive`` seconds or the server's ``Keep-Alive: timeout``
  (a connection the server closed while idle is never reused; one it closes as the request
  is sent fails like any lost connection — the route's failover decides, never a silent resend);
* the three :class:`Timeouts` with one timer per exchange: ``connect`` (new connections only),
  ``first_token`` (the wait for the head and first body bytes, then the idle limit between
  reads) and ``total``;
* back-pressure: reading from the upstream pauses while more than 256 KiB wait unread.

Errors are :class:`~relaygate.canonical.GatewayError` (``UNAVAILABLE`` when no connection can be
made, ``TIMEOUT``, ``UPSTREAM`` for a lost connection or a malformed response).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from relaygate.backends.transport import Timeouts, UpstreamResponse, connection_lost
from relaygate.canonical import ErrorKind, GatewayError

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024

# Phases of an exchange, for the timeout message.
_HEAD, _BODY, _DONE = 0, 1, 2


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


@functools.lru_cache(maxsize=1024)
def _origin(url: str) -> tuple[tuple[str, str, int], str, str]:
    """``(scheme, host, port)``, the request target and the ``Host`` header of ``url``."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise GatewayError(ErrorKind.UPSTREAM, f"unsupported upstream URL scheme: {scheme!r}")
    slash = rest.find("/")
    query = rest.find("?")
    cut = min(i for i in (slash, query, len(rest)) if i >= 0)
    authority, target = rest[:cut], rest[cut:]
    if not target.startswith("/"):
        target = "/" + target
    if "@" in authority:
        raise GatewayError(ErrorKind.UPSTREAM, "credentials in an upstream URL are not supported")
    default = 443 if scheme == "https" else 80
    if authority.startswith("["):  # IPv6 literal
        end = authority.find("]")
        host = authority[1:end]
        port_text = authority[end + 2 :] if authority[end + 1 : end + 2] == ":" else ""
    else:
        host, _, port_text = authority.partition(":")
    try:
        port = int(port_text) if port_text else default
    except ValueError:
        raise GatewayError(ErrorKind.UPSTREAM, f"bad port in upstream URL: {port_text!r}") from None
    if not host:
        raise GatewayError(ErrorKind.UPSTREAM, "upstream URL has no host")
    host_header = authority if port_text else (f"[{host}]" if ":" in host else host)
    return (scheme, host, port), target, host_header


class _Exchange:
    """One request/response on a connection: httptools' callbacks and the reader's buffer.

    It is also the :class:`UpstreamResponse` handed to the backend.
    """

    __slots__ = (
        "_conn",
        "_framed",
        "_head_waiter",
        "_headers",
        "_inflate",
        "_raw_headers",
        "_waiter",
        "buffered",
        "chunks",
        "error",
        "failure",
        "keep_alive",
        "phase",
        "status",
    )

    def __init__(self, conn: _Connection) -> None:
        self._conn: _Connection | None = conn
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: CIMultiDictProxy[str] | None = None
        self._head_waiter: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._inflate: Any = None
        self._framed = True
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.status = 0
        self.phase = _HEAD
        self.keep_alive = False
        self.error: GatewayError | None = None
        self.failure: str = ""

    # ------------------------------------------------------------------ httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        conn = self._conn
        assert conn is not None
        parser = conn.parser
        self.status = parser.get_status_code()
        # An interim response (100 Continue, 103 Early Hints): the real one follows.
        if self.status < 200:
            return
        framed = False
        for name, value in self._raw_headers:
            lname = name.lower()
            if lname == b"content-length" or lname == b"transfer-encoding":
                framed = True
            elif lname == b"content-encoding":
                coding = value.strip().lower()
                if coding == b"gzip":
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                elif coding == b"deflate":
                    self._inflate = zlib.decompressobj(zlib.MAX_WBITS)
            elif lname == b"keep-alive":
                conn.note_keep_alive(value)
        # No length and not chunked: the body ends when the server closes (204/304 have none).
        self._framed = framed or self.status in (204, 304)
        self.phase = _BODY
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self._inflate is not None:
            try:
                body = self._inflate.decompress(body)
            except zlib.error:
                if self.chunks or self.buffered or self._inflate.unused_data:
                    raise
                # "deflate" sent as a raw stream (no zlib header), as some servers do.
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                body = self._inflate.decompress(body)
            if not body:
                return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and self._conn is not None:
            self._conn.pause()
        self._wake()

    def on_message_complete(self) -> None:
        if self.phase == _HEAD:  # the end of an interim response
            self._raw_headers = []
            return
        if self._inflate is not None:
            tail = self._inflate.flush()
            if tail:
                self.chunks.append(tail)
                self.buffered += len(tail)
        conn = self._conn
        self.keep_alive = conn is not None and conn.parser.should_keep_alive()
        self.phase = _DONE
        if conn is not None:
            conn.exchange_done(self)
        self._wake()

    # ------------------------------------------------------------------ connection events

    def fail(self, error: GatewayError, failure: str) -> None:
        if self.phase == _DONE or self.error is not None:
            return
        self.error = error
        self.failure = failure
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._wake()

    def eof(self) -> None:
        """The server closed the connection."""
        if self.phase == _BODY and not self._framed:
            self.on_message_complete()
            self.keep_alive = False
        elif self.phase != _DONE:
            self.fail(connection_lost(ServerDisconnected()), "lost")

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ UpstreamResponse

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            headers: CIMultiDict[str] = CIMultiDict()
            for name, value in self._raw_headers:
                headers.add(name.decode("latin-1"), value.decode("latin-1"))
            self._headers = CIMultiDictProxy(headers)
        return self._headers

    def _raise(self, while_: str) -> None:
        error = self.error
        assert error is not None
        if self.failure == "timeout":
            raise GatewayError(ErrorKind.TIMEOUT, while_)
        raise GatewayError(error.kind, error.message)

    async def _wait(self, whole: bool = False) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        conn = self._conn
        # Reading the whole body: nothing drains the buffer until the end, so never pause.
        if conn is not None and (whole or self.buffered < _LOW_WATER):
            conn.resume()
        try:
            await waiter
        except BaseException:
            self._waiter = None
            raise

    async def read(self) -> bytes:
        try:
            while self.phase != _DONE:
                if self.error is not None:
                    self._raise("upstream timed out while sending the body")
                await self._wait(whole=True)
        except BaseException:
            self.close()
            raise
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        self.release()
        return data

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        chunks = self.chunks
        try:
            while True:
                while chunks:
                    chunk = chunks.popleft()
                    self.buffered -= len(chunk)
                    yield chunk
                if self.phase == _DONE:
                    break
                if self.error is not None:
                    self._raise("upstream stopped sending (idle timeout)")
                await self._wait()
        except BaseException:
            self.close()
            raise
        self.release()

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.abandon(self)

    def release(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            if self.phase == _DONE and not self.chunks:
                conn.release(self)
            else:  # unread body: the connection cannot be reused
                conn.abandon(self)


class ServerDisconnected(ConnectionError):
    """The upstream closed the connection before the response was complete."""


class _Connection(asyncio.Protocol):
    __slots__ = (
        "closed",
        "exchange",
        "idle_since",
        "keepalive",
        "last_read",
        "parser",
        "paused",
        "pool",
        "started",
        "timeouts",
        "timer",
        "transport",
    )

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.parser: Any = None
        self.closed = False
        self.paused = False
        self.idle_since = 0.0
        self.keepalive = pool.owner.keepalive
        self.timer: asyncio.TimerHandle | None = None
        self.timeouts = Timeouts()
        self.started = 0.0
        self.last_read = 0.0

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes on an idle connection: the stream is out of step
            self.abort()
            return
        self.last_read = self.pool.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            exchange.fail(
                GatewayError(ErrorKind.UPSTREAM, f"upstream sent a malformed HTTP response: {exc}"),
                "protocol",
            )
            self.abort()
        except zlib.error:
            exchange.fail(
                GatewayError(ErrorKind.UPSTREAM, "upstream sent a body that does not inflate"),
                "protocol",
            )
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            self.pool.active -= 1
            if exc is None:
                exchange.eof()
            elif exchange.error is None:
                exchange.fail(connection_lost(exc), "lost")

    # ------------------------------------------------------------------ exchange

    def start(self, exchange: _Exchange, data: bytes, timeouts: Timeouts) -> None:
        assert self.transport is not None
        self.exchange = exchange
        self.parser = httptools.HttpResponseParser(exchange)
        self.timeouts = timeouts
        loop = self.pool.loop
        self.started = self.last_read = now = loop.time()
        self.timer = loop.call_at(now + min(timeouts.first_token, timeouts.total), self._on_timer)
        self.pool.active += 1
        self.transport.write(data)

    def _on_timer(self) -> None:
        self.timer = None
        exchange = self.exchange
        if exchange is None:
            return
        loop = self.pool.loop
        now = loop.time()
        if self.paused:  # our reader is behind, not the upstream: its idle clock restarts
            self.last_read = now
        idle_at = self.last_read + self.timeouts.first_token
        total_at = self.started + self.timeouts.total
        if now >= idle_at or now >= total_at:
            what = "did not answer in time" if exchange.phase == _HEAD else "timed out"
            exchange.fail(GatewayError(ErrorKind.TIMEOUT, f"upstream {what}"), "timeout")
            self.abort()
            return
        self.timer = loop.call_at(min(idle_at, total_at), self._on_timer)

    def _cancel_timer(self) -> None:
        timer = self.timer
        if timer is not None:
            self.timer = None
            timer.cancel()

    def exchange_done(self, exchange: _Exchange) -> None:
        if self.exchange is exchange:
            self._cancel_timer()

    def note_keep_alive(self, value: bytes) -> None:
        """``Keep-Alive: timeout=N``: drop the idle connection a second before the server does."""
        for part in value.split(b","):
            key, _, number = part.strip().partition(b"=")
            if key.strip().lower() == b"timeout":
                try:
                    self.keepalive = min(self.keepalive, max(0.0, float(number) - 1.0))
                except ValueError:
                    pass

    def release(self, exchange: _Exchange) -> None:
        if self.exchange is not exchange:
            return
        self.exchange = None
        self.pool.active -= 1
        self._cancel_timer()
        if exchange.keep_alive and not self.closed and self.keepalive > 0:
            self.resume()
            self.pool.put(self)
        else:
            self.abort()

    def abandon(self, exchange: _Exchange) -> None:
        if self.exchange is exchange:
            self.exchange = None
            self.pool.active -= 1
            self._cancel_timer()
            self.abort()

    def pause(self) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Pool:
    """Idle connections to one origin, most recently used last."""

    __slots__ = ("active", "host", "idle", "loop", "owner", "port", "ssl", "sweeper")

    def __init__(self, owner: NativeTransport, origin: tuple[str, str, int]) -> None:
        self.owner = owner
        self.loop = asyncio.get_running_loop()
        self.host = origin[1]
        self.port = origin[2]
        self.ssl = origin[0] == "https"
        self.idle: list[_Connection] = []
        self.active = 0
        self.sweeper: asyncio.TimerHandle | None = None

    def take(self) -> _Connection | None:
        idle = self.idle
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if (
                not conn.closed
                and now - conn.idle_since < conn.keepalive
                and conn.transport is not None
                and not conn.transport.is_closing()
            ):
                return conn
            conn.abort()
        return None

    def put(self, conn: _Connection) -> None:
        conn.idle_since = self.loop.time()
        idle = self.idle
        idle.append(conn)
        self._prune(conn.idle_since)
        if self.sweeper is None:
            # Without further traffic, idle connections still close when their time is up.
            self.sweeper = self.loop.call_later(self.owner.keepalive, self._sweep)

    def _prune(self, now: float) -> None:
        """Drop connections the server closed meanwhile, or idle too long, oldest first."""
        idle = self.idle
        while idle and (idle[0].closed or now - idle[0].idle_since >= idle[0].keepalive):
            idle.pop(0).abort()

    def _sweep(self) -> None:
        self.sweeper = None
        self._prune(self.loop.time())
        if self.idle:
            self.sweeper = self.loop.call_later(self.owner.keepalive, self._sweep)

    async def connect(self, timeout: float) -> _Connection:
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=(self.owner.ssl_context or _ssl_context()) if self.ssl else None,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            raise GatewayError(
                ErrorKind.UNAVAILABLE, "cannot connect to upstream: connect timed out"
            ) from None
        except ssl.SSLError as exc:
            raise GatewayError(
                ErrorKind.UNAVAILABLE, f"cannot connect to upstream: TLS failed ({exc.reason})"
            ) from None
        except OSError as exc:
            raise GatewayError(
                ErrorKind.UNAVAILABLE, f"cannot connect to upstream: {exc.strerror or exc}"
            ) from None
        return conn

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None
        for conn in self.idle:
            conn.abort()
        self.idle.clear()


class NativeTransport:
    """Pooled HTTP/1.1 client (see the module docstring); one per backend."""

    def __init__(
        self, *, keepalive: float = 15.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """``ssl_context``: TLS settings for https upstreams (default: the system's trust store,
        which ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` can point elsewhere)."""
        self.keepalive = keepalive
        self.ssl_context = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}

    @property
    def pool_in_use(self) -> int:
        """Connections currently carrying a request (for metrics)."""
        return sum(pool.active for pool in self._pools.values())

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        origin, target, host = _origin(url)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(self, origin)
        data = _request_bytes(method, target, host, headers, body)
        conn = pool.take()
        if conn is None:
            conn = await pool.connect(timeouts.connect)
        exchange = _Exchange(conn)
        waiter = exchange._head_waiter = pool.loop.create_future()
        conn.start(exchange, data, timeouts)
        try:
            await waiter
        except BaseException:
            exchange.close()
            raise
        error = exchange.error
        if error is None:
            return exchange
        exchange.close()
        if exchange.failure == "timeout":
            raise GatewayError(ErrorKind.TIMEOUT, "upstream did not answer in time")
        raise GatewayError(error.kind, error.message)

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()


def _request_bytes(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    encoding = True
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise GatewayError(
                ErrorKind.INVALID_REQUEST, f"header {name!r} for the upstream contains a line break"
            )
        lname = name.lower()
        if lname == "accept-encoding" or (lname == "accept" and value == "text/event-stream"):
            encoding = False
        elif lname in ("host", "content-length", "transfer-encoding"):
            continue
        lines.append(f"{name}: {value}\r\n")
    if encoding:
        lines.append("Accept-Encoding: gzip, deflate\r\n")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        return "".join(lines).encode("utf-8") + body
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")
