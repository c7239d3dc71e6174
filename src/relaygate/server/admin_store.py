"""Admin endpoints backed by the store: virtual keys and the usage summary.

* ``GET /api/keys`` — every key's id, name, limits and status (never a secret or its hash);
* ``POST /api/keys`` — create one (``name``, optional ``rpm``, ``tpm``, ``budget``, ``models``);
  the key is in the response once and stored only as a hash;
* ``DELETE /api/keys/{key_id}`` — revoke;
* ``GET /api/usage/summary?by=backend&hours=24`` — the ledger grouped by ``key_id``, ``backend``,
  ``model`` or ``route``, with totals (what ``relaygate usage`` prints).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relaygate.manager import ProviderError
from relaygate.server.envelope import ok
from relaygate.store.db import Store, StoreUnavailable

if TYPE_CHECKING:
    from relaygate.server.admin import AdminAPI

GROUPS = ("key_id", "backend", "model", "route")
TOTALS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    budget: float | None = Field(None, ge=0)
    models: list[str] | None = None


def _json(data: bytes, status: int = 200) -> Response:
    return Response(data, status_code=status, media_type="application/json")


class StoreEndpoints:
    def __init__(self, api: AdminAPI) -> None:
        self.api = api

    def store(self) -> Store:
        store = self.api.app.state.get("store")
        if store is None:
            raise ProviderError("INTERNAL_ERROR", "no store is configured (storage.url)", 503)
        return store  # type: ignore[no-any-return]

    async def _call(self, work: Any) -> Any:
        try:
            return await work
        except StoreUnavailable as exc:
            raise ProviderError(
                "INTERNAL_ERROR", f"store unavailable: {exc} — check storage.url", 503
            ) from None

    async def list_keys(self, request: Request) -> Response:
        rows = await self._call(self.store().list_keys())
        return _json(ok([{**row, "active": row["revoked"] is None} for row in rows]))

    async def create_key(self, request: Request) -> Response:
        body = await self.api.body(request, KeyBody)
        key = await self._call(
            self.store().create_key(
                body.name, rpm=body.rpm, tpm=body.tpm, budget=body.budget, models=body.models
            )
        )
        return _json(ok({"id": key.id, "name": key.name, "key": key.key}), 201)

    async def revoke_key(self, request: Request) -> Response:
        key_id = request.path_params["key_id"]
        if not await self._call(self.store().revoke_key(key_id)):
            raise ProviderError("INVALID_REQUEST", f"No active key with id {key_id!r}.", 404)
        verifier = self.api.app.state.get("key_verifier")
        if verifier is not None:  # effective at once on this instance
            verifier.forget(key_id)
        return _json(ok({"id": key_id, "revoked": True}))

    async def usage_summary(self, request: Request) -> Response:
        by = request.query_params.get("by", "backend")
        if by not in GROUPS:
            raise ProviderError(
                "INVALID_REQUEST", f"by: use one of {', '.join(GROUPS)}, not {by!r}"
            )
        hours_text = request.query_params.get("hours")
        since = None
        if hours_text:
            try:
                hours = float(hours_text)
            except ValueError:
                hours = -1.0
            if not hours > 0:
                raise ProviderError("INVALID_REQUEST", "hours: give a positive number of hours")
            since = time.time() - hours * 3600
        ledger = self.api.app.state.get("ledger")
        if ledger is not None:
            # Rows still queued (or being written) belong in the summary; a stuck store must
            # not hang the call.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ledger.flush(), 2.0)
        rows = await self._call(self.store().usage_summary(since=since, group_by=by))
        groups = [
            {
                **{k: (v or 0) for k, v in row.items() if k != "group"},
                "group": row["group"],
                "cost": round(float(row["cost"] or 0), 8),
                "avg_latency_ms": round(float(row["avg_latency_ms"] or 0), 1),
            }
            for row in rows
        ]
        totals: dict[str, Any] = {name: sum(int(g[name]) for g in groups) for name in TOTALS}
        totals["cost"] = round(sum(g["cost"] for g in groups), 8)
        data = {
            "by": by,
            "since": since,
            "groups": groups,
            "totals": totals,
            "dropped_rows": ledger.dropped if ledger is not None else 0,
        }
        return _json(ok(data))

    def routes(self) -> list[Route]:
        g = self.api.guarded
        return [
            Route("/api/keys", g(self.list_keys), methods=["GET"]),
            Route("/api/keys", g(self.create_key), methods=["POST"]),
            Route("/api/keys/{key_id}", g(self.revoke_key), methods=["DELETE"]),
            Route("/api/usage/summary", g(self.usage_summary), methods=["GET"]),
        ]
