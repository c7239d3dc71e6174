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

# Formats whose output needs nothing from a LogRecord but the level, the logger name and the
# message (no time, caller or thread): lines in them can be written without building a record.
_PLAIN_FORMATS = {"%(levelname)s %(name)s: %(message)s": "{level} {name}: "}


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

    def write_line(self, line: str, levelno: int) -> None:
        """Queue an already formatted line (see :class:`DirectLines`)."""
        with self.lock:  # type: ignore[union-attr]
            self._lines.append(line)
            self._size += len(line)
            if levelno >= logging.WARNING or self._size >= self.max_bytes:
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


class DirectLines:
    """Write a logger's lines straight into a :class:`BatchingStreamHandler`, skipping the
    LogRecord, the lookups and the formatter, when that gives the same output: the logger and
    its ancestors have no handlers or filters of their own, the root's only handler is a
    BatchingStreamHandler without filters, formatted in one of the plain formats. Otherwise
    :meth:`write` returns False and the caller logs the usual way. Re-checked on every line
    (a few attribute reads), so a handler added later — a test's log capture, say — is honoured.
    """

    def __init__(self, name: str, level: int = logging.INFO) -> None:
        self.logger = logging.getLogger(name)
        self.level = level
        self.levelname = logging.getLevelName(level)
        chain: list[logging.Logger] = []
        node: logging.Logger | None = self.logger
        while node is not None and node is not logging.root:
            chain.append(node)
            node = node.parent
        self.chain = chain
        self._handler: BatchingStreamHandler | None = None
        self._prefix = ""

    def write(self, message: str) -> bool:
        handlers = logging.root.handlers
        if len(handlers) != 1:
            return False
        handler = handlers[0]
        if handler is not self._handler and not self._adopt(handler):
            return False
        for node in self.chain:
            if node.handlers or node.filters or not node.propagate:
                return False
        if handler.filters or handler.level > self.level or logging.root.filters:
            return False
        assert self._handler is not None
        self._handler.write_line(self._prefix + message + "\n", self.level)
        return True

    def _adopt(self, handler: logging.Handler) -> bool:
        formatter = handler.formatter
        if (
            not isinstance(handler, BatchingStreamHandler)
            or handler.terminator != "\n"
            or formatter is None
            or type(formatter) is not logging.Formatter
        ):
            return False
        template = _PLAIN_FORMATS.get(formatter._fmt or "")
        if template is None:
            return False
        self._handler = handler
        self._prefix = template.format(level=self.levelname, name=self.logger.name)
        return True
