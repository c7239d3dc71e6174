"""The server's log handler: lines written in batches instead of one write per line.

A :class:`logging.StreamHandler` writes and flushes every record — with the access log on, one
``write`` syscall per request on the request path. :class:`BatchingStreamHandler` keeps the
formatted lines and writes them together: when ``max_bytes`` have gathered, at once for a
WARNING or worse (so problems are never late), and otherwise at most ``interval`` seconds later
from a small daemon thread. Closing the handler writes what is left but does not stop the
flusher: ``logging.config.dictConfig`` (uvicorn configures its loggers with it) closes every
existing handler while leaving it attached, and lines logged after that must still go out. The
flusher holds the handler weakly and ends once the handler is gone.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TextIO


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    def __init__(
        self, stream: TextIO, *, interval: float = 0.25, max_bytes: int = 64 * 1024
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        super().__init__(stream)
        self.interval = interval
        self.max_bytes = max_bytes
        self._lines: list[str] = []
        self._size = 0
        self._flusher = threading.Thread(
            target=_flush_every,
            args=(weakref.ref(self), interval),
            name="relaygate-log-flush",
            daemon=True,
        )
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        # Called under the handler's lock (Handler.handle).
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            if not self._lines:
                return
            data = "".join(self._lines)
            self._lines.clear()
            self._size = 0
            try:
                self.stream.write(data)
                self.stream.flush()
            except (OSError, ValueError):  # the stream is gone (closed pipe, closed file)
                pass

    def close(self) -> None:
        try:
            self.flush()
        finally:
            super().close()


def _flush_every(ref: weakref.ref[BatchingStreamHandler], interval: float) -> None:
    while True:
        time.sleep(interval)
        handler = ref()
        if handler is None:
            return
        handler.flush()
        del handler
