"""Wire the store into a :class:`~relaygate.server.app.RelayApp`: the key verifier for the auth
middleware, the ledger observer, the price table and ``x-relaygate-cost``, start-up and
shut-down of the writer. Start-up never fails because the database is down (fail-open)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from relaygate import prices
from relaygate.config import Config
from relaygate.server.pipeline import OUTCOME_HEADERS
from relaygate.store.auth import KeyVerifier
from relaygate.store.db import Store, StoreUnavailable
from relaygate.store.ledger import Ledger
from relaygate.store.vault import Vault

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)


class PriceSource:
    """The price table of whichever config is running (it changes on reload)."""

    def __init__(self, app: RelayApp) -> None:
        self.app = app
        self._config: Config | None = None
        self._table = prices.PriceTable({})

    def __call__(self) -> prices.PriceTable:
        config = self.app.gateway.config
        if config is not self._config:
            self._table = prices.PriceTable.from_config(config.prices)
            self._config = config
            prices.set_current(self._table)
        return self._table


def install(app: RelayApp) -> None:
    config = app.gateway.config
    problems = prices.problems(config)
    if problems:
        from relaygate.config import ConfigError

        raise ConfigError(problems)
    store = Store(config.storage.url)
    source = PriceSource(app)
    source()
    if prices.cost_header not in OUTCOME_HEADERS:
        OUTCOME_HEADERS.append(prices.cost_header)
    ledger = Ledger(
        store,
        source,
        batch_size=config.storage.batch_size,
        flush_interval=config.storage.flush_interval,
    )
    verifier = KeyVerifier(store)
    app.state.update(
        store=store,
        vault=Vault.from_env(),
        ledger=ledger,
        prices=source,
        key_verifier=verifier,
    )
    app.observers.append(ledger)

    async def start(app: RelayApp) -> None:
        try:
            await store.init()
        except StoreUnavailable as exc:
            log.warning(
                "store %s unavailable at start-up (requests still flow): %s",
                _safe_url(store.url),
                exc,
            )
        ledger.start()

        async def stop() -> None:
            await ledger.stop()
            await store.close()

        app.shutdown_callbacks.append(stop)

    app.lifecycle.append(start)


def _safe_url(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]
