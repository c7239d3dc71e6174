"""The usage ledger: an :class:`~relaygate.server.pipeline.Observer` that queues one record per
request and a background task that turns them into rows and writes them in batches. The request
path only prices the record and does a ``put_nowait``; when the database is down the rows are
dropped and counted, never waited on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from relaygate.prices import PriceTable
from relaygate.routing.router import Plan
from relaygate.server.pipeline import RequestInfo, UsageRecord
from relaygate.store.db import Store, StoreUnavailable

log = logging.getLogger(__name__)


def row_of(record: UsageRecord) -> dict[str, Any]:
    u = record.usage
    return {
        "request_id": record.request_id,
        "ts": record.time,
        "key_id": record.client_key,
        "route": record.route[:256] if record.route else None,
        "backend": record.backend,
        "model": record.model,
        "dialect": record.dialect,
        "stream": record.stream,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "latency_ms": round(record.latency_ms, 3),
        "ttft_ms": round(record.ttft_ms, 3) if record.ttft_ms is not None else None,
        "status": record.status,
        "error": record.error,
        "attempts": record.attempts,
        "cost": record.cost,
    }


class Ledger:
    def __init__(
        self,
        store: Store,
        prices: Callable[[], PriceTable],
        *,
        batch_size: int = 100,
        flush_interval: float = 0.5,
        max_queue: int = 10_000,
    ) -> None:
        self.store = store
        self.prices = prices
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.queue: asyncio.Queue[UsageRecord] = asyncio.Queue(max_queue)
        self._full = asyncio.Event()  # set when a whole batch is queued
        self.written = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_warning = 0.0

    # ------------------------------------------------------------------ Observer

    async def before(self, info: RequestInfo) -> None:
        return None

    async def after_plan(self, info: RequestInfo, plan: Plan) -> None:
        return None

    def finish(self, info: RequestInfo, record: UsageRecord) -> None:
        if record.cost is None and record.model:
            native = (
                info.plan.targets[0].native_id
                if info.plan and len(info.plan.targets) == 1
                else None
            )
            record.cost = self.prices().cost(record.usage, record.model, native)
        queue = self.queue
        try:
            queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            return
        if queue.qsize() >= self.batch_size - 1:  # the writer holds one, waiting for the rest
            self._full.set()

    # ------------------------------------------------------------------ writer

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="relaygate-ledger")

    async def _run(self) -> None:
        queue = self.queue
        while True:
            batch = [await queue.get()]
            # Let rows gather for up to ``flush_interval`` or until a batch is full: one timer
            # per batch, not a wait_for (a task and a timer) per row.
            if queue.qsize() < self.batch_size - 1:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._full.wait()
            while len(batch) < self.batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            await self._write(batch)

    async def _write(self, batch: list[UsageRecord]) -> None:
        try:
            await self.store.write_usage([row_of(record) for record in batch])
            self.written += len(batch)
            self.last_error = None
        except StoreUnavailable as exc:
            self.dropped += len(batch)
            self.last_error = str(exc)
            now = time.monotonic()
            if now - self._last_warning > 30:
                self._last_warning = now
                log.warning(
                    "usage ledger: store unavailable, %d rows dropped so far (%s)",
                    self.dropped,
                    exc,
                )
        except Exception:
            self.dropped += len(batch)
            log.exception("usage ledger: unexpected error writing %d rows", len(batch))
        finally:
            for _ in batch:
                self.queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued row has been written (or dropped)."""
        await self.queue.join()

    async def stop(self) -> None:
        """Write what is queued, then stop the writer."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush(), 10)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def stats(self) -> dict[str, Any]:
        return {
            "queued": self.queue.qsize(),
            "written": self.written,
            "dropped": self.dropped,
            "last_error": self.last_error,
        }
