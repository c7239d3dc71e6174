"""Provider keys registered at run time are encrypted at rest with Fernet; the key comes from
``RELAYGATE_VAULT_KEY`` and nowhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

VAULT_ENV = "RELAYGATE_VAULT_KEY"
HOW_TO = (
    f"set {VAULT_ENV} to a Fernet key — generate one with: python -c "
    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class VaultUnavailable(Exception):
    """No usable vault key: secrets cannot be stored or read."""


class Vault:
    def __init__(self, key: str | None) -> None:
        self._fernet: Fernet | None = None
        self.problem: str | None = None
        if not key:
            self.problem = f"{VAULT_ENV} is not set — {HOW_TO}"
            return
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            self.problem = f"{VAULT_ENV} is not a valid Fernet key — {HOW_TO}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Vault:
        source = os.environ if env is None else env
        return cls(source.get(VAULT_ENV))

    @property
    def available(self) -> bool:
        return self._fernet is not None

    def encrypt(self, secret: str) -> str:
        if self._fernet is None:
            raise VaultUnavailable(self.problem or "vault unavailable")
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        if self._fernet is None:
            raise VaultUnavailable(self.problem or "vault unavailable")
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise VaultUnavailable(
                f"a stored provider key cannot be decrypted with this {VAULT_ENV} "
                "(was the vault key changed?)"
            ) from None
