"""The native HTTP/1.1 client's framing, pooling and back-pressure, against real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from relaygate.backends.native import NativeTransport, _origin, _request_bytes
from relaygate.backends.transport import Timeouts
from relaygate.canonical import ErrorKind, GatewayError

FAST = Timeouts(connect=1.0, first_token=2.0, total=5.0)


@pytest.fixture(params=["asyncio", "uvloop"], scope="module")
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Every test on both loops: ``relaygate serve`` runs uvloop, whose transports differ."""
    if request.param == "uvloop":
        import uvloop

        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _raw_server(handler: RawHandler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def _raw_upstream(handler: RawHandler) -> AsyncIterator[tuple[str, NativeTransport]]:
    """A raw socket server answering with ``handler`` and a transport to call it with."""
    server, url = await _raw_server(handler)
    transport = NativeTransport()
    try:
        yield url, transport
    finally:
        await transport.aclose()
        server.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


@pytest.fixture
async def app_url() -> AsyncIterator[str]:
    async def gz(request: web.Request) -> web.Response:
        body = gzip.compress(b'{"ok": "gzip"}')
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def deflate_raw(request: web.Request) -> web.Response:
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = c.compress(b'{"ok": "raw deflate"}') + c.flush()
        return web.Response(body=body, headers={"Content-Encoding": "deflate"})

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(5):
            await resp.write(f"data: {i}\n\n".encode())
            await asyncio.sleep(0.005)
        await resp.write_eof()
        return resp

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (3 * 1024 * 1024))

    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {"headers": dict(request.headers), "body": (await request.read()).decode()}
        )

    app = web.Application()
    app.router.add_get("/gzip", gz)
    app.router.add_get("/deflate", deflate_raw)
    app.router.add_post("/chunked", chunked)
    app.router.add_get("/big", big)
    app.router.add_get("/empty", no_content)
    app.router.add_post("/echo", echo)
    async for url in _serve(app):
        yield url


async def test_gzip_and_raw_deflate_are_inflated(app_url: str) -> None:
    t = NativeTransport()
    try:
        for path, text in (("/gzip", b'{"ok": "gzip"}'), ("/deflate", b'{"ok": "raw deflate"}')):
            resp = await t.send("GET", app_url + path, headers={}, body=None, timeouts=FAST)
            assert resp.status == 200
            assert await resp.read() == text
    finally:
        await t.aclose()


async def test_chunked_stream_arrives_in_order_and_connection_is_reused(app_url: str) -> None:
    t = NativeTransport()
    try:
        for _ in range(3):
            resp = await t.send(
                "POST",
                app_url + "/chunked",
                headers={"Accept": "text/event-stream"},
                body=b"{}",
                timeouts=FAST,
            )
            assert t.pool_in_use == 1
            data = b"".join([c async for c in resp.iter_chunks()])
            assert data == b"".join(f"data: {i}\n\n".encode() for i in range(5))
            assert t.pool_in_use == 0
        pool = next(iter(t._pools.values()))
        assert len(pool.idle) == 1  # three requests, one connection
    finally:
        await t.aclose()


async def test_body_larger_than_the_pause_mark_is_read_whole(app_url: str) -> None:
    t = NativeTransport()
    try:
        resp = await t.send("GET", app_url + "/big", headers={}, body=None, timeouts=FAST)
        assert len(await resp.read()) == 3 * 1024 * 1024
        # Streamed with a slow reader: reading pauses and resumes, nothing is lost.
        resp = await t.send("GET", app_url + "/big", headers={}, body=None, timeouts=FAST)
        total = 0
        async for chunk in resp.iter_chunks():
            total += len(chunk)
            await asyncio.sleep(0)
        assert total == 3 * 1024 * 1024
    finally:
        await t.aclose()


async def test_204_has_no_body_and_headers_are_case_insensitive(app_url: str) -> None:
    t = NativeTransport()
    try:
        resp = await t.send("GET", app_url + "/empty", headers={}, body=None, timeouts=FAST)
        assert resp.status == 204 and await resp.read() == b""
        assert resp.headers.get("content-length") == resp.headers.get("Content-Length")
    finally:
        await t.aclose()


async def test_request_carries_headers_body_and_encoding_choice(app_url: str) -> None:
    t = NativeTransport()
    try:
        resp = await t.send(
            "POST",
            app_url + "/echo",
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
            body=b'{"a": 1}',
            timeouts=FAST,
        )
        seen = (await resp.read()).decode()
        assert '"Authorization": "Bearer k"' in seen and '{\\"a\\": 1}' in seen
        assert '"Accept-Encoding": "gzip, deflate"' in seen
        resp = await t.send(
            "POST",
            app_url + "/echo",
            headers={"Accept": "text/event-stream"},
            body=b"{}",
            timeouts=FAST,
        )
        assert "Accept-Encoding" not in (await resp.read()).decode()  # streams uncompressed
    finally:
        await t.aclose()


async def test_header_with_line_break_is_refused() -> None:
    with pytest.raises(GatewayError) as info:
        _request_bytes("POST", "/", "h", {"X-Evil": "a\r\nHost: other"}, b"")
    assert info.value.kind is ErrorKind.INVALID_REQUEST


def test_origin_parsing() -> None:
    assert _origin("https://api.example.com/v1/x?y=1") == (
        ("https", "api.example.com", 443),
        "/v1/x?y=1",
        "api.example.com",
    )
    assert _origin("http://127.0.0.1:8080") == (("http", "127.0.0.1", 8080), "/", "127.0.0.1:8080")
    assert _origin("http://[::1]:9/a") == (("http", "::1", 9), "/a", "[::1]:9")
    with pytest.raises(GatewayError):
        _origin("ftp://x/")


async def test_close_delimited_body_ends_at_eof() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        writer.write(b"part one, ")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"part two")
        writer.close()

    async with _raw_upstream(handler) as (url, t):
        resp = await t.send("GET", url + "/", headers={}, body=None, timeouts=FAST)
        assert await resp.read() == b"part one, part two"
        assert not next(iter(t._pools.values())).idle  # not kept: the server closed it


async def test_truncated_body_is_connection_lost() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        await writer.drain()
        writer.close()

    async with _raw_upstream(handler) as (url, t):
        resp = await t.send("GET", url + "/", headers={}, body=None, timeouts=FAST)
        with pytest.raises(GatewayError) as info:
            await resp.read()
        assert info.value.kind is ErrorKind.UPSTREAM and "connection lost" in info.value.message


async def test_garbage_instead_of_http_is_an_upstream_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()

    async with _raw_upstream(handler) as (url, t):
        with pytest.raises(GatewayError) as info:
            await t.send("GET", url + "/", headers={}, body=None, timeouts=FAST)
        assert info.value.kind is ErrorKind.UPSTREAM and "malformed" in info.value.message


async def test_server_keep_alive_timeout_is_honoured() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await _read_request(reader)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=1\r\n\r\nok"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async with _raw_upstream(handler) as (url, t):
        for _ in range(2):
            resp = await t.send("GET", url + "/", headers={}, body=None, timeouts=FAST)
            assert await resp.read() == b"ok"
        # "timeout=1": relaygate stops reusing the connection a second early, so at once.
        assert connections == 2


async def test_idle_connection_closed_by_the_server_is_not_reused() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # keep-alive was implied, but the server closes anyway

    async with _raw_upstream(handler) as (url, t):
        for _ in range(3):
            resp = await t.send("GET", url + "/", headers={}, body=None, timeouts=FAST)
            assert await resp.read() == b"ok"
            await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
        assert connections == 3


async def test_slow_reader_does_not_trip_the_idle_timeout() -> None:
    """Paused reading is relaygate's own back-pressure, not an idle upstream."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1024 * 1024))
        writer.write(b"y" * (1024 * 1024))
        await writer.drain()
        await asyncio.sleep(5)

    async with _raw_upstream(handler) as (url, t):
        resp = await t.send(
            "GET",
            url + "/",
            headers={},
            body=None,
            timeouts=Timeouts(connect=1.0, first_token=0.2, total=5.0),
        )
        total = 0
        async for chunk in resp.iter_chunks():
            total += len(chunk)
            await asyncio.sleep(0.1 if total < 600_000 else 0)
        assert total == 1024 * 1024


async def test_interim_response_is_skipped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n")
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Final: yes\r\n\r\ndone")
        await writer.drain()

    async with _raw_upstream(handler) as (url, t):
        resp = await t.send("GET", url + "/", headers={}, body=None, timeouts=FAST)
        assert resp.status == 201 and resp.headers["x-final"] == "yes"
        assert "link" not in resp.headers
        assert await resp.read() == b"done"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relaygate-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_upstream_verified_against_the_given_trust(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            while True:
                await _read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nover tls!")
                await writer.drain()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/x"
    trusting = ssl.create_default_context(cafile=str(cert))
    t = NativeTransport(ssl_context=trusting)
    untrusting = NativeTransport()
    try:
        for _ in range(2):  # the second request reuses the TLS connection
            resp = await t.send("POST", url, headers={}, body=b"{}", timeouts=FAST)
            assert resp.status == 200 and await resp.read() == b"over tls!"
        assert len(next(iter(t._pools.values())).idle) == 1
        # The system trust store does not know this certificate: refused, never sent.
        with pytest.raises(GatewayError) as info:
            await untrusting.send("POST", url, headers={}, body=b"{}", timeouts=FAST)
        assert info.value.kind is ErrorKind.UNAVAILABLE and "TLS" in info.value.message
    finally:
        await t.aclose()
        await untrusting.aclose()
        server.close()


async def test_idle_connections_are_closed_when_their_time_is_up(app_url: str) -> None:
    t = NativeTransport(keepalive=0.05)
    try:
        resp = await t.send("GET", app_url + "/empty", headers={}, body=None, timeouts=FAST)
        await resp.read()
        pool = next(iter(t._pools.values()))
        assert len(pool.idle) == 1
        await asyncio.sleep(0.2)  # no more traffic: the sweeper closes it anyway
        assert pool.idle == [] and pool.sweeper is None
    finally:
        await t.aclose()
