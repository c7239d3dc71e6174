"""The virtual-key verifier the auth middleware calls. Lookups are cached briefly so the hot path
rarely touches the database; a revocation on this instance takes effect at once, one on another
instance within ``ttl`` seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.store.db import Store, StoreUnavailable
from relaygate.store.keys import hash_key


class KeyVerifier:
    def __init__(
        self, store: Store, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    async def __call__(self, presented: str) -> dict[str, Any] | None:
        digest = hash_key(presented)
        now = self.clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            meta = await self.store.find_key(presented)
        except StoreUnavailable:
            if hit is not None:  # stale but known: better than refusing everyone
                return hit[1]
            raise GatewayError(
                ErrorKind.UNAVAILABLE,
                "The key store is unavailable, so this virtual key cannot be checked; retry shortly.",
                retry_after=5,
            ) from None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl, meta)
        return meta

    def forget(self, key_id: str) -> None:
        """Drop cached entries of ``key_id`` (after a revocation)."""
        for digest, (_, meta) in list(self._cache.items()):
            if meta is not None and meta.get("id") == key_id:
                del self._cache[digest]
