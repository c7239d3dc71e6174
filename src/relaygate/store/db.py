"""The database: three tables and the queries the gateway, the admin API and the CLI need.

:class:`Store` wraps an async SQLAlchemy engine. ``sqlite:///file`` becomes
``sqlite+aiosqlite:///file`` and ``postgresql://…`` becomes ``postgresql+asyncpg://…``.
Every database error surfaces as :class:`StoreUnavailable` so callers can fail open (ledger) or
fail closed (auth) deliberately.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from relaygate.store.keys import NewKey, generate_key, hash_key, same_digest

metadata = MetaData()

usage = Table(
    "relaygate_usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False),
    Column("ts", Float, nullable=False),
    Column("key_id", String(64)),
    Column("route", String(256)),
    Column("backend", String(128)),
    Column("model", String(256)),
    Column("dialect", String(32)),
    Column("stream", Boolean, nullable=False, default=False),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cache_read_tokens", Integer, nullable=False, default=0),
    Column("cache_write_tokens", Integer, nullable=False, default=0),
    Column("reasoning_tokens", Integer, nullable=False, default=0),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("status", Integer, nullable=False),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("cost", Float),
    Index("ix_relaygate_usage_key_ts", "key_id", "ts"),
)

virtual_keys = Table(
    "relaygate_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("created", Float, nullable=False),
    Column("revoked", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("budget", Float),
    Column("models", Text),  # JSON list, null = any model
)

providers = Table(
    "relaygate_providers",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("kind", String(128), nullable=False),
    Column("config", Text, nullable=False),  # JSON options without secrets
    Column("secret", Text),  # Fernet token of the API key
    Column("enabled", Boolean, nullable=False, default=True),
    Column("default_model", String(256)),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

settings = Table(
    "relaygate_settings",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

USAGE_FIELDS = tuple(c.name for c in usage.columns if c.name != "id")
# Column defaults, for rows that leave a field out.
_USAGE_DEFAULTS: dict[str, Any] = {
    c.name: (c.default.arg if c.default is not None else None)  # type: ignore[attr-defined]
    for c in usage.columns
    if c.name != "id"
}


def _placeholders(paramstyle: str, n: int) -> str | None:
    """Positional placeholders in the driver's own style (None: a style without them)."""
    if paramstyle == "qmark":
        return ", ".join("?" * n)
    if paramstyle == "numeric_dollar":
        return ", ".join(f"${i}" for i in range(1, n + 1))
    if paramstyle == "numeric":
        return ", ".join(f":{i}" for i in range(1, n + 1))
    if paramstyle == "format":
        return ", ".join(["%s"] * n)
    return None


class StoreUnavailable(Exception):
    """The database could not be reached or refused the statement."""


def async_url(url: str) -> str:
    """Map the configured URL onto an async driver."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    return url


def _key_meta(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "rpm": row.rpm,
        "tpm": row.tpm,
        "budget": row.budget,
        "models": json.loads(row.models) if row.models else None,
        "created": row.created,
        "revoked": row.revoked,
    }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """SQLite as a ledger: write-ahead log (readers never block the writer, and a commit is one
    append instead of a rollback journal created, synced and deleted) with ``synchronous=NORMAL``
    (durable against a crash of relaygate; the last commits may go only if the machine loses
    power). Wait for a lock instead of failing at once when another process writes."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Store:
    def __init__(self, url: str, *, engine: AsyncEngine | None = None) -> None:
        self.url = url
        kwargs: dict[str, Any] = {}
        target = async_url(url)
        if target.startswith("postgresql"):
            # Fail fast when Postgres is down: the ledger must not stall behind a dead DB.
            kwargs["connect_args"] = {"timeout": 3}
            kwargs["pool_pre_ping"] = True
        self.engine = engine or create_async_engine(target, **kwargs)
        if engine is None and target.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._ready = False
        marks = _placeholders(self.engine.dialect.paramstyle, len(USAGE_FIELDS))
        # Drivers with named placeholders only (pyformat, named) take SQLAlchemy's insert.
        self._insert_usage = (
            f"INSERT INTO {usage.name} ({', '.join(USAGE_FIELDS)}) VALUES ({marks})"
            if marks is not None
            else None
        )

    async def init(self) -> None:
        """Create the tables if they do not exist (idempotent; safe from several instances)."""
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(metadata.create_all, checkfirst=True)
        except SQLAlchemyError as exc:
            # Two instances racing on CREATE TABLE: the loser sees a duplicate; re-check.
            if "already exists" not in str(exc) and "duplicate" not in str(exc).lower():
                raise StoreUnavailable(_describe(exc)) from None
        except OSError as exc:
            raise StoreUnavailable(_describe(exc)) from None
        self._ready = True

    async def ensure(self) -> None:
        if not self._ready:
            await self.init()

    async def close(self) -> None:
        await self.engine.dispose()

    async def _run(self, stmt: Any) -> Any:
        await self.ensure()
        try:
            async with self.engine.begin() as conn:
                return await conn.execute(stmt)
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(_describe(exc)) from None

    async def _rows(self, stmt: Any) -> Sequence[Any]:
        await self.ensure()
        try:
            async with self.engine.connect() as conn:
                result = await conn.execute(stmt)
                return result.fetchall()
        except (SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(_describe(exc)) from None

    # ------------------------------------------------------------------ ledger

    async def write_usage(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            # One executemany of plain tuples through the driver: SQLAlchemy's per-row parameter
            # processing of an ``insert(usage)`` cost ~60 us of the event loop per request.
            await self.ensure()
            sql = self._insert_usage
            defaults = _USAGE_DEFAULTS
            params = [
                tuple(
                    row[name] if row.get(name) is not None else defaults[name]
                    for name in USAGE_FIELDS
                )
                for row in rows
            ]
            try:
                async with self.engine.begin() as conn:
                    if sql is None:
                        full = [dict(zip(USAGE_FIELDS, values, strict=True)) for values in params]
                        await conn.execute(insert(usage), full)
                    else:
                        await conn.exec_driver_sql(sql, params)
            except (SQLAlchemyError, OSError) as exc:
                raise StoreUnavailable(_describe(exc)) from None

    async def usage_summary(
        self, *, since: float | None = None, group_by: str = "key_id"
    ) -> list[dict[str, Any]]:
        if group_by not in ("key_id", "backend", "model", "route"):
            raise ValueError(f"cannot group usage by {group_by!r}")
        col = usage.c[group_by]
        stmt = select(
            col.label("group"),
            func.count().label("requests"),
            func.sum(usage.c.input_tokens).label("input_tokens"),
            func.sum(usage.c.output_tokens).label("output_tokens"),
            func.sum(usage.c.cache_read_tokens).label("cache_read_tokens"),
            func.sum(usage.c.cache_write_tokens).label("cache_write_tokens"),
            func.sum(usage.c.reasoning_tokens).label("reasoning_tokens"),
            func.sum(func.coalesce(usage.c.cost, 0.0)).label("cost"),
            func.sum(func.cast(usage.c.status >= 400, Integer)).label("errors"),
            func.avg(usage.c.latency_ms).label("avg_latency_ms"),
        ).group_by(col)
        if since is not None:
            stmt = stmt.where(usage.c.ts >= since)
        return [dict(r._mapping) for r in await self._rows(stmt.order_by(col))]

    async def usage_rows(
        self, *, limit: int = 100, key_id: str | None = None
    ) -> list[dict[str, Any]]:
        stmt = select(usage).order_by(usage.c.id.desc()).limit(limit)
        if key_id is not None:
            stmt = stmt.where(usage.c.key_id == key_id)
        return [dict(r._mapping) for r in await self._rows(stmt)]

    async def spend(self, key_id: str) -> float:
        stmt = select(func.coalesce(func.sum(usage.c.cost), 0.0)).where(usage.c.key_id == key_id)
        rows = await self._rows(stmt)
        return float(rows[0][0] or 0.0)

    # ------------------------------------------------------------------ virtual keys

    async def create_key(
        self,
        name: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        budget: float | None = None,
        models: list[str] | None = None,
    ) -> NewKey:
        secret = generate_key()
        key_id = "key_" + uuid.uuid4().hex[:16]
        await self._run(
            insert(virtual_keys).values(
                id=key_id,
                name=name,
                digest=hash_key(secret),
                created=time.time(),
                rpm=rpm,
                tpm=tpm,
                budget=budget,
                models=json.dumps(models) if models else None,
            )
        )
        return NewKey(id=key_id, key=secret, name=name)

    async def find_key(self, secret: str) -> dict[str, Any] | None:
        """The metadata of an active key, or None (unknown or revoked)."""
        digest = hash_key(secret)
        rows = await self._rows(select(virtual_keys).where(virtual_keys.c.digest == digest))
        for row in rows:
            if same_digest(row.digest, digest) and row.revoked is None:
                return _key_meta(row)
        return None

    async def list_keys(self) -> list[dict[str, Any]]:
        rows = await self._rows(select(virtual_keys).order_by(virtual_keys.c.created))
        return [_key_meta(r) for r in rows]

    async def revoke_key(self, key_id: str) -> bool:
        result = await self._run(
            update(virtual_keys)
            .where(virtual_keys.c.id == key_id, virtual_keys.c.revoked.is_(None))
            .values(revoked=time.time())
        )
        return bool(result.rowcount)

    # ------------------------------------------------------------------ providers

    async def save_provider(
        self,
        name: str,
        kind: str,
        config: dict[str, Any],
        *,
        secret: str | None,
        enabled: bool = True,
        default_model: str | None = None,
    ) -> None:
        now = time.time()
        values = {
            "kind": kind,
            "config": json.dumps(config),
            "secret": secret,
            "enabled": enabled,
            "default_model": default_model,
            "updated": now,
        }
        result = await self._run(update(providers).where(providers.c.name == name).values(values))
        if not result.rowcount:
            await self._run(insert(providers).values(name=name, created=now, **values))

    async def load_providers(self) -> list[dict[str, Any]]:
        rows = await self._rows(select(providers).order_by(providers.c.created))
        return [
            {
                "name": r.name,
                "kind": r.kind,
                "config": json.loads(r.config),
                "secret": r.secret,
                "enabled": r.enabled,
                "default_model": r.default_model,
            }
            for r in rows
        ]

    async def delete_provider(self, name: str) -> bool:
        result = await self._run(delete(providers).where(providers.c.name == name))
        return bool(result.rowcount)

    async def get_setting(self, name: str) -> str | None:
        rows = await self._rows(select(settings.c.value).where(settings.c.name == name))
        return str(rows[0][0]) if rows else None

    async def set_setting(self, name: str, value: str) -> None:
        result = await self._run(
            update(settings).where(settings.c.name == name).values(value=value)
        )
        if not result.rowcount:
            await self._run(insert(settings).values(name=name, value=value))


def _describe(exc: BaseException) -> str:
    """A one-line cause without the statement's bound parameters (they may hold digests)."""
    orig = getattr(exc, "orig", None)
    text = (
        str(orig if orig is not None else exc).splitlines()[0] if str(exc) else type(exc).__name__
    )
    return f"{type(orig or exc).__name__}: {text[:200]}"
