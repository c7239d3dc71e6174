"""The upstream HTTP seam: two methods, like httpx's transports.

Backends never touch an HTTP client directly; they get a :class:`Transport`. The default is
:class:`relaygate.backends.native.NativeTransport` (llhttp over asyncio protocols, pooled per
backend); :class:`AiohttpTransport` is the same contract on aiohttp's client (the conformance
tests run both); tests inject :class:`MockTransport`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from relaygate.canonical import ErrorKind, GatewayError


@dataclass(slots=True, frozen=True)
class Timeouts:
    connect: float = 10.0
    first_token: float = 60.0  # headers + first body chunk; also the idle limit between chunks
    total: float = 600.0


class UpstreamResponse(Protocol):
    status: int

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None:
        """Abort: the connection is closed, not returned to the pool."""

    def release(self) -> None:
        """Done reading: the connection may be reused."""


class Transport(Protocol):
    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


# ----------------------------------------------------------------------------- aiohttp


class _AiohttpResponse:
    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise connection_lost(exc) from None
        except TimeoutError:
            raise GatewayError(
                ErrorKind.TIMEOUT, "upstream timed out while sending the body"
            ) from None
        finally:
            self._resp.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (
            aiohttp.ClientPayloadError,
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
        ) as exc:
            raise connection_lost(exc) from None
        except TimeoutError:
            raise GatewayError(
                ErrorKind.TIMEOUT, "upstream stopped sending (idle timeout)"
            ) from None

    def close(self) -> None:
        self._resp.close()

    def release(self) -> None:
        self._resp.release()


@functools.lru_cache(maxsize=256)
def _client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=timeouts.total,
        connect=timeouts.connect,
        sock_connect=timeouts.connect,
        sock_read=timeouts.first_token,
    )


def connection_lost(exc: BaseException) -> GatewayError:
    return GatewayError(ErrorKind.UPSTREAM, f"upstream connection lost: {type(exc).__name__}")


class AiohttpTransport:
    """A pooled :class:`aiohttp.ClientSession`, created on first use inside the running loop."""

    # No pool cap by default: LLM streams stay open for minutes, and a cap of 512 made the
    # 513th concurrent stream of a backend wait for a connection while its first-token clock
    # ran (seen in bench/: 1,000 open streams). File-descriptor limits are the real bound.
    def __init__(self, *, limit: int = 0, limit_per_host: int = 0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._limit = limit
        self._limit_per_host = limit_per_host

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                ttl_dns_cache=300,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                # One session serves every client: a cookie an upstream sets for one request
                # must not ride along on another client's (and a jar costs work per request).
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    @property
    def pool_in_use(self) -> int:
        """Connections currently borrowed from the pool (for metrics)."""
        session = self._session
        if session is None or session.closed or session.connector is None:
            return 0
        acquired = getattr(session.connector, "_acquired", ())
        return len(acquired)

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        # aiohttp enforces all three: connect (pool + DNS + TCP), the wait for the headers
        # and every later read (sock_read), and the whole exchange (total). No asyncio.timeout
        # on top: it cost a timer handle and a context manager per request for nothing.
        try:
            resp = await self._get_session().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=_client_timeout(timeouts),
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorError as exc:
            raise GatewayError(
                ErrorKind.UNAVAILABLE, f"cannot connect to upstream: {exc.os_error.strerror or exc}"
            ) from None
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
            aiohttp.ClientPayloadError,
        ) as exc:
            raise connection_lost(exc) from None
        except TimeoutError:
            raise GatewayError(ErrorKind.TIMEOUT, "upstream did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise GatewayError(
                ErrorKind.UPSTREAM, f"upstream request failed: {type(exc).__name__}"
            ) from None
        return _AiohttpResponse(resp)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# ----------------------------------------------------------------------------- mock


@dataclass
class MockReply:
    status: int = 200
    body: bytes | list[bytes] = b""
    headers: Mapping[str, str] | None = None


class _MockResponse:
    def __init__(self, reply: MockReply) -> None:
        self.status = reply.status
        self.headers: Mapping[str, str] = dict(reply.headers or {})
        self._body = reply.body
        self.closed = False

    async def read(self) -> bytes:
        return self._body if isinstance(self._body, bytes) else b"".join(self._body)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        chunks = [self._body] if isinstance(self._body, bytes) else self._body
        for chunk in chunks:
            if self.closed:
                return
            yield chunk

    def close(self) -> None:
        self.closed = True

    def release(self) -> None:
        pass


Handler = Callable[[str, str, Mapping[str, str], bytes | None], Awaitable[MockReply] | MockReply]


class MockTransport:
    """A transport that answers from ``handler(method, url, headers, body)``; no network.

    Example::

        async def handler(method, url, headers, body):
            return MockReply(200, b'{"choices": []}')
        backend = make_backend(..., transport=MockTransport(handler))
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        self.calls.append((method, url, dict(headers), body))
        result = self.handler(method, url, headers, body)
        reply = await result if asyncio.iscoroutine(result) else result
        assert isinstance(reply, MockReply)
        return _MockResponse(reply)

    async def aclose(self) -> None:
        pass
