"""The coalescing uvicorn protocol: a response's head and first body part leave in one write,
uvicorn's own HTTP handling (keep-alive, close, pipelining, errors) unchanged."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl

from relaygate.server.uvproto import HTTP_PROTOCOL, CoalescingCycle


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _cycle(transport: FakeTransport, *, keep_alive: bool = True) -> tuple[Any, list[int]]:
    done: list[int] = []
    log = logging.getLogger("test.uvproto")
    cycle = CoalescingCycle(
        scope={"method": "GET", "http_version": "1.1", "type": "http"},
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=log,
        access_logger=log,
        access_log=False,
        default_headers=[],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: done.append(1),
    )
    return cycle, done


START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
}
BODY = {"type": "http.response.body", "body": b"{}"}


async def test_head_and_body_leave_in_one_write() -> None:
    transport = FakeTransport()
    cycle, done = _cycle(transport)
    await cycle.send(START)
    assert transport.writes == []  # held until the body
    await cycle.send(BODY)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 2" in head
    assert body == b"{}"
    assert done == [1] and cycle.response_complete and not transport.closed
    await asyncio.sleep(0)  # the end-of-iteration flush finds nothing left
    assert len(transport.writes) == 1


async def test_head_goes_out_alone_when_the_app_waits() -> None:
    transport = FakeTransport()
    cycle, _ = _cycle(transport)
    await cycle.send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x")]}
    )
    await asyncio.sleep(0)  # the app yields before its first chunk: the client gets headers
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in transport.writes[0]
    await cycle.send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    await cycle.send({"type": "http.response.body", "body": b"", "more_body": False})
    assert transport.writes[1:] == [b"9\r\ndata: 1\n\n\r\n", b"0\r\n\r\n"]


async def test_stream_head_joins_its_first_chunk() -> None:
    transport = FakeTransport()
    cycle, _ = _cycle(transport)
    await cycle.send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"x")]}
    )
    await cycle.send({"type": "http.response.body", "body": b"a", "more_body": True})
    await cycle.send({"type": "http.response.body", "body": b"b", "more_body": False})
    assert len(transport.writes) == 2
    assert transport.writes[0].endswith(b"\r\n\r\n1\r\na\r\n")
    assert transport.writes[1] == b"1\r\nb\r\n0\r\n\r\n"


async def test_connection_close_writes_then_closes() -> None:
    transport = FakeTransport()  # asserts no write comes after close
    cycle, done = _cycle(transport, keep_alive=False)
    await cycle.send(START)
    await cycle.send(BODY)
    assert len(transport.writes) == 1 and b"connection: close" in transport.writes[0]
    assert transport.closed and done == [1]


async def test_a_bad_body_still_raises_and_nothing_is_written_late() -> None:
    transport = FakeTransport()
    cycle, _ = _cycle(transport)
    await cycle.send(START)
    with pytest.raises(RuntimeError, match="longer than Content-Length"):
        await cycle.send({"type": "http.response.body", "body": b"too long"})
    writes = list(transport.writes)
    await asyncio.sleep(0)
    assert transport.writes == writes  # no stray head flushed afterwards


async def _echo_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = scope["path"].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def test_real_server_keep_alive_and_pipelining() -> None:
    """uvicorn with the protocol: three requests pipelined on one keep-alive connection come
    back whole and in order."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(_echo_app, http=HTTP_PROTOCOL, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(f"GET /r{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3)))
        await writer.drain()
        for i in range(3):
            status = await reader.readline()
            assert status == b"HTTP/1.1 200 OK\r\n"
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert await reader.readexactly(length) == f"/r{i}".encode()
        writer.close()
    finally:
        server.should_exit = True
        await task
