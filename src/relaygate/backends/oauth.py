"""The OAuth-credential pattern: a bearer token that lives in a credentials file.

An HTTP backend with ``config.oauth`` takes its ``Authorization`` header from an
:class:`OAuthTokenProvider` instead of an API key:

* the file (JSON) holds ``access_token``, ``refresh_token`` and ``expiry`` — ISO-8601 or epoch
  seconds; Google-style files with ``expiry_date`` in milliseconds are read as well;
* shortly before expiry (``refresh_margin``) the token is refreshed against ``token_url`` with
  ``grant_type=refresh_token`` (RFC 6749 §6), and the file is written back atomically with mode
  0600, keeping every field it does not own;
* an upstream 401 invalidates the token: :class:`~relaygate.backends.base.HttpBackend` refreshes
  and retries the request once.

Example::

    config:
      base_url: https://llm.example.com/v1
      oauth:
        credentials_file: ~/.config/example/oauth_creds.json
        token_url: https://auth.example.com/oauth/token
        client_id: relaygate
        client_secret_env: EXAMPLE_CLIENT_SECRET
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, ConfigDict, Field

from relaygate.backends.transport import Timeouts, Transport
from relaygate.canonical import ErrorKind, GatewayError
from relaygate.redact import redact, register_secret


class OAuthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials_file: str = Field(min_length=1, description="JSON file with the tokens")
    token_url: str = Field(min_length=1, description="the OAuth token endpoint")
    client_id: str | None = None
    client_secret: str | None = None
    client_secret_env: str | None = Field(None, description="env var holding the client secret")
    scope: str | None = None
    refresh_margin: float = Field(60.0, ge=0, description="refresh this many seconds early")


def parse_expiry(data: Mapping[str, Any]) -> float | None:
    """Epoch seconds from ``expiry`` (ISO-8601 or epoch seconds) or ``expiry_date`` (ms)."""
    value = data.get("expiry")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    ms = data.get("expiry_date")
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return float(ms) / 1000.0
    return None


def write_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` via a 0600 temp file in the same directory + rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class OAuthTokenProvider:
    """Hands out a valid access token; refreshes (once, under a lock) when it is due."""

    def __init__(
        self,
        options: OAuthOptions,
        transport: Transport,
        *,
        backend: str = "",
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.transport = transport
        self.backend = backend
        self.path = Path(options.credentials_file).expanduser()
        self.clock = clock
        self.client_secret = options.client_secret
        if options.client_secret_env:
            self.client_secret = (os.environ if env is None else env).get(options.client_secret_env)
        register_secret(self.client_secret)
        self._data: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    def _error(self, message: str) -> GatewayError:
        return GatewayError(
            ErrorKind.AUTHENTICATION, redact(message), status=502, backend=self.backend
        )

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise self._error(
                f"OAuth credentials file {self.path} does not exist — sign in with the provider's "
                "tool first or fix config.oauth.credentials_file"
            ) from None
        except (OSError, ValueError) as exc:
            raise self._error(f"cannot read OAuth credentials file {self.path}: {exc}") from None
        if not isinstance(data, dict) or not (
            data.get("access_token") or data.get("refresh_token")
        ):
            raise self._error(
                f"OAuth credentials file {self.path} has neither access_token nor refresh_token"
            )
        for name in ("access_token", "refresh_token"):
            register_secret(data.get(name))
        return data

    def _due(self, data: Mapping[str, Any]) -> bool:
        if not data.get("access_token"):
            return True
        expiry = parse_expiry(data)
        return expiry is not None and expiry - self.options.refresh_margin <= self.clock()

    async def token(self) -> str:
        async with self._lock:
            if self._data is None:
                self._data = self._load()
            if self._due(self._data):
                await self._refresh()
            return str(self._data["access_token"])

    async def invalidate(self, stale: str) -> str:
        """The upstream refused ``stale``: refresh unless another request already did."""
        async with self._lock:
            if self._data is None:
                self._data = self._load()
            if self._data.get("access_token") == stale:
                await self._refresh()
            return str(self._data["access_token"])

    async def _refresh(self) -> None:
        assert self._data is not None
        refresh_token = self._data.get("refresh_token")
        if not refresh_token:
            raise self._error(
                f"the OAuth access token in {self.path} has expired and there is no refresh_token — sign in again"
            )
        form = {"grant_type": "refresh_token", "refresh_token": str(refresh_token)}
        if self.options.client_id:
            form["client_id"] = self.options.client_id
        if self.client_secret:
            form["client_secret"] = self.client_secret
        if self.options.scope:
            form["scope"] = self.options.scope
        resp = await self.transport.send(
            "POST",
            self.options.token_url,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            body=urlencode(form).encode(),
            timeouts=Timeouts(connect=5.0, first_token=15.0, total=20.0),
        )
        raw = await resp.read()
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            answer = None
        if resp.status >= 400 or not isinstance(answer, dict) or not answer.get("access_token"):
            reason = ""
            if isinstance(answer, dict):
                reason = str(answer.get("error_description") or answer.get("error") or "")
            raise self._error(
                f"OAuth token refresh at {self.options.token_url} failed (HTTP {resp.status}"
                f"{': ' + reason if reason else ''}) — sign in again to renew {self.path.name}"
            )
        register_secret(str(answer["access_token"]))
        data = dict(self._data)
        data["access_token"] = str(answer["access_token"])
        if answer.get("refresh_token"):  # rotation
            register_secret(str(answer["refresh_token"]))
            data["refresh_token"] = str(answer["refresh_token"])
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expiry = self.clock() + float(expires_in)
            data["expiry"] = datetime.fromtimestamp(expiry, UTC).isoformat().replace("+00:00", "Z")
            if "expiry_date" in data:
                data["expiry_date"] = int(expiry * 1000)
        if answer.get("token_type"):
            data["token_type"] = answer["token_type"]
        write_atomic(self.path, data)
        self._data = data
        self.refreshes += 1
