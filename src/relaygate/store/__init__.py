"""Persistent state: the usage ledger, virtual keys (hashed), the vault and run-time provider
registrations. SQLite by default, Postgres by URL; SQLAlchemy 2 async underneath."""

from relaygate.store.db import Store, StoreUnavailable, async_url
from relaygate.store.keys import NewKey, generate_key, hash_key
from relaygate.store.vault import Vault, VaultUnavailable

__all__ = [
    "NewKey",
    "Store",
    "StoreUnavailable",
    "Vault",
    "VaultUnavailable",
    "async_url",
    "generate_key",
    "hash_key",
]
