"""Rate limits and budgets, as an :class:`~relaygate.server.pipeline.Observer`.

* RPM and TPM per virtual key (from the key's own settings, else ``limits.default_key``) and per
  backend (``limits.backends.<id>``), counted with the ``limits`` library: in memory, or in Redis
  when ``redis.url`` is set so that every instance shares one count.
* Budgets per key: spend comes from the ledger (cost of every recorded request) and is kept
  current locally between refreshes.

Over a limit → 429 with ``Retry-After`` in the client's dialect; over budget → 402 naming the
budget; a model outside the key's list → 403. Redis trouble fails open (counted, logged).

Config::

    limits:
      default_key: {rpm: 60, tpm: 100000}
      backends:
        openai: {rpm: 500, tpm: 2000000}
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.config import Config, ConfigError, pydantic_problems
from relaygate.routing.router import Plan
from relaygate.server.pipeline import RequestInfo, UsageRecord

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)


class Rate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)


class LimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_key: Rate = Field(default_factory=Rate)
    backends: dict[str, Rate] = Field(default_factory=dict)
    budget_refresh_seconds: float = Field(10.0, ge=0)


def problems(config: Config) -> list[str]:
    try:
        parsed = LimitsConfig.model_validate(config.limits)
    except ValidationError as exc:
        return pydantic_problems(exc, config.limits, "limits")
    ids = {b.id for b in config.plugins.backends}
    return [
        f"limits.backends.{name}: no backend has this id — use one of: {', '.join(sorted(ids))}"
        for name in parsed.backends
        if name not in ids
    ]


def storage_for(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    url = redis_url if redis_url.startswith("async+") else "async+" + redis_url
    return RedisStorage(url, implementation="redispy", wrap_exceptions=True, key_prefix="relaygate")


def _allowed(patterns: list[str], names: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


class RateLimiter:
    """The observer. ``spend`` is per key id, refreshed from the store every few seconds."""

    def __init__(self, app: RelayApp, storage: Storage) -> None:
        self.app = app
        self.storage = storage
        self.requests = MovingWindowRateLimiter(storage)  # exact across instances (Lua in Redis)
        self.tokens = FixedWindowRateLimiter(storage)  # counts every token, even past the limit
        self._config: Config | None = None
        self._parsed = LimitsConfig()
        self.spend: dict[str, tuple[float, float]] = {}  # key id → (refreshed at, USD)
        self.rejected = 0
        self.storage_errors = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_warning = 0.0

    @property
    def config(self) -> LimitsConfig:
        current = self.app.gateway.config
        if current is not self._config:
            self._parsed = LimitsConfig.model_validate(current.limits)
            self._config = current
        return self._parsed

    # ------------------------------------------------------------------ helpers

    def _storage_failed(self, exc: BaseException) -> None:
        self.storage_errors += 1
        now = time.monotonic()
        if now - self._last_warning > 30:
            self._last_warning = now
            log.warning("rate-limit storage unavailable, limits not enforced: %s", exc)

    async def _window_full(self, item: RateLimitItem, *ids: str) -> float | None:
        """Seconds until ``item`` has room again, or None if it has room now."""
        stats = await self.requests.get_window_stats(item, *ids)
        if stats.remaining > 0:
            return None
        return max(1.0, stats.reset_time - time.time())

    async def _tokens_full(self, item: RateLimitItem, *ids: str) -> float | None:
        stats = await self.tokens.get_window_stats(item, *ids)
        if stats.remaining > 0:
            return None
        return max(1.0, stats.reset_time - time.time())

    def _key_rate(self, meta: dict[str, Any]) -> Rate:
        default = self.config.default_key
        return Rate(rpm=meta.get("rpm") or default.rpm, tpm=meta.get("tpm") or default.tpm)

    async def _spent(self, key_id: str) -> float:
        now = time.monotonic()
        cached = self.spend.get(key_id)
        if cached is not None and now - cached[0] < self.config.budget_refresh_seconds:
            return cached[1]
        store = self.app.state.get("store")
        ledger = self.app.state.get("ledger")
        if store is None:
            return cached[1] if cached else 0.0
        try:
            if ledger is not None and ledger.queue.qsize():
                await asyncio.wait_for(ledger.flush(), 1.0)
            value = float(await store.spend(key_id))
        except Exception as exc:  # the store is down: keep the local count (fail open)
            log.debug("budget refresh failed for %s: %s", key_id, exc)
            return cached[1] if cached else 0.0
        self.spend[key_id] = (now, value)
        return value

    # ------------------------------------------------------------------ Observer

    async def before(self, info: RequestInfo) -> None:
        meta = info.key_meta
        if not meta or meta.get("master") or not info.client_key:
            return
        key_id = info.client_key
        name = meta.get("name") or key_id
        budget = meta.get("budget")
        if budget is not None:
            spent = await self._spent(key_id)
            if spent >= float(budget):
                self.rejected += 1
                raise GatewayError(
                    ErrorKind.BUDGET,
                    f"Budget exhausted: key '{name}' has spent ${spent:.4f} of its "
                    f"${float(budget):.2f} budget. Raise the key's budget or use another key.",
                    code="budget_exceeded",
                )
        rate = self._key_rate(meta)
        try:
            if rate.tpm:
                wait = await self._tokens_full(RateLimitItemPerMinute(rate.tpm), "tpm", key_id)
                if wait is not None:
                    self.rejected += 1
                    raise GatewayError(
                        ErrorKind.RATE_LIMIT,
                        f"Token rate limit reached for key '{name}': {rate.tpm} tokens per minute.",
                        retry_after=wait,
                        code="rate_limit_exceeded",
                    )
            if rate.rpm:
                item = RateLimitItemPerMinute(rate.rpm)
                if not await self.requests.hit(item, "rpm", key_id):
                    self.rejected += 1
                    wait = await self._window_full(item, "rpm", key_id) or 1.0
                    raise GatewayError(
                        ErrorKind.RATE_LIMIT,
                        f"Rate limit reached for key '{name}': {rate.rpm} requests per minute.",
                        retry_after=wait,
                        code="rate_limit_exceeded",
                    )
        except GatewayError:
            raise
        except Exception as exc:
            self._storage_failed(exc)

    async def after_plan(self, info: RequestInfo, plan: Plan) -> None:
        meta = info.key_meta
        allowed = meta.get("models") if meta else None
        if allowed:
            names = [info.model, plan.name, *(t.selector for t in plan.targets)]
            if not _allowed(list(allowed), names):
                raise GatewayError(
                    ErrorKind.PERMISSION,
                    f"Key '{meta.get('name') or info.client_key}' may not use model "
                    f"'{info.model}' (allowed: {', '.join(allowed)}).",
                    param="model",
                )
        limits = self.config.backends
        if not limits:
            return
        # A backend over its limit is skipped only if another target of the plan has room; the
        # request counts against the first backend with room.
        soonest: float | None = None
        try:
            for target in plan.targets:
                rate = limits.get(target.backend.id)
                if rate is None:
                    return
                bid = target.backend.id
                wait = None
                if rate.tpm:
                    wait = await self._tokens_full(RateLimitItemPerMinute(rate.tpm), "btpm", bid)
                if wait is None and rate.rpm:
                    item = RateLimitItemPerMinute(rate.rpm)
                    if await self.requests.hit(item, "brpm", bid):
                        return
                    wait = await self._window_full(item, "brpm", bid) or 1.0
                if wait is None:
                    return
                soonest = wait if soonest is None else min(soonest, wait)
        except Exception as exc:
            self._storage_failed(exc)
            return
        self.rejected += 1
        raise GatewayError(
            ErrorKind.RATE_LIMIT,
            f"Rate limit reached for every backend of '{plan.name}' "
            f"({', '.join(t.backend.id for t in plan.targets)}).",
            retry_after=soonest,
            code="rate_limit_exceeded",
        )

    def finish(self, info: RequestInfo, record: UsageRecord) -> None:
        key_id = info.client_key
        meta = info.key_meta
        if key_id and meta and not meta.get("master") and record.cost:
            at, spent = self.spend.get(key_id, (time.monotonic(), 0.0))
            self.spend[key_id] = (at, spent + record.cost)
        tokens = record.usage.total_tokens
        if not tokens:
            return
        hits: list[tuple[RateLimitItem, str, str]] = []
        if key_id and meta and not meta.get("master"):
            rate = self._key_rate(meta)
            if rate.tpm:
                hits.append((RateLimitItemPerMinute(rate.tpm), "tpm", key_id))
        if record.backend:
            brate = self.config.backends.get(record.backend)
            if brate is not None and brate.tpm:
                hits.append((RateLimitItemPerMinute(brate.tpm), "btpm", record.backend))
        if hits:
            task = asyncio.get_running_loop().create_task(self._count_tokens(hits, tokens))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _count_tokens(self, hits: list[tuple[RateLimitItem, str, str]], tokens: int) -> None:
        try:
            for item, kind, ident in hits:
                await self.tokens.hit(item, kind, ident, cost=tokens)
        except Exception as exc:
            self._storage_failed(exc)

    async def settle(self) -> None:
        """Wait for token counts still being written (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def install(app: RelayApp) -> None:
    found = problems(app.gateway.config)
    if found:
        raise ConfigError(found)
    limiter = RateLimiter(app, storage_for(app.gateway.config.redis.url))
    app.state["limiter"] = limiter
    app.observers.append(limiter)

    async def start(app: RelayApp) -> None:
        async def stop() -> None:
            await limiter.settle()

        app.shutdown_callbacks.append(stop)

    app.lifecycle.append(start)
