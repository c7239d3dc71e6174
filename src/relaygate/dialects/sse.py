"""Server-sent events: an incremental decoder over bytes and an encoder.

The decoder accepts ``\\n``, ``\\r\\n`` and ``\\r`` line ends, multi-line ``data`` fields and
comments, and yields one :class:`SSEEvent` per blank-line-terminated block, as the WHATWG
spec says. It keeps no per-event objects beyond the tuple it yields.
"""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):
    event: str | None
    data: str


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            block = buf[start:end]
            start = end + 2
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        self._buf = buf[start:]
        return events

    def flush(self) -> list[SSEEvent]:
        """Events left in the buffer when the stream ends without a final blank line."""
        rest, self._buf = self._buf, b""
        if not rest.strip():
            return []
        event = _parse_block(rest.rstrip(b"\n"))
        return [event] if event is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    if block.startswith(b"data: ") and b"\n" not in block:  # the usual block: one data line
        return SSEEvent(None, block[6:].decode("utf-8", "replace"))
    name: str | None = None
    data: list[str] = []
    for raw in block.split(b"\n"):
        if not raw or raw.startswith(b":"):
            continue
        field, sep, value = raw.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value.decode("utf-8", "replace"))
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if not data and name is None:
        return None
    return SSEEvent(name, "\n".join(data))


def encode(data: bytes | str, event: str | None = None) -> bytes:
    """One SSE block. ``data`` must not contain newlines (JSON from orjson never does)."""
    payload = data.encode() if isinstance(data, str) else data
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


DONE = b"data: [DONE]\n\n"
