"""Admin-API generations (``POST /api/generate``, ``POST /api/providers/{name}/test``) seen by the
same observers as client traffic: limits and budgets may refuse them, the ledger writes their
row (dialect ``admin``), metrics and tracing count them, shutdown drains them.

They do not go through :func:`relaygate.server.pipeline.generate` because they name one
provider directly (no routing, retries or fallback) and answer in the admin envelope, not in a
client dialect; what they share with it is the observer protocol, driven here the same way."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from starlette.requests import Request as StarletteRequest

from relaygate import dialects
from relaygate.backends.base import Backend
from relaygate.canonical import ErrorKind, GatewayError, Usage
from relaygate.routing.router import Plan, Target
from relaygate.server.pipeline import RequestInfo, UsageRecord, new_request_id

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)

ADMIN_DIALECT = "admin"


class AdminCall:
    """One admin generation: :meth:`begin` runs the observers' checks (may raise
    :class:`GatewayError`), :meth:`end` hands them the record. ``end`` is idempotent."""

    def __init__(
        self, app: RelayApp, request: StarletteRequest, backend: Backend, native: str, stream: bool
    ) -> None:
        self.app = app
        state = request.scope.setdefault("state", {})
        selector = f"{backend.prefix}/{native}" if backend.prefix else native
        self.info = RequestInfo(
            request_id=new_request_id(request.scope),
            dialect=dialects.get(dialects.OPENAI_CHAT),
            path=request.url.path,
            body={},
            model=selector,
            stream=stream,
            client_key=state.get("client_key"),
            key_meta=state.get("key_meta") or {},
        )
        self.plan = Plan(
            name=selector, strategy="single", targets=[Target(backend, native, selector)]
        )
        self.first_token_at: float | None = None
        self._counted = False
        self._attempted = False
        self._ended = False

    async def begin(self) -> None:
        if not self.app.accepting:
            raise GatewayError(
                ErrorKind.UNAVAILABLE,
                "relaygate is shutting down and takes no new requests.",
                status=503,
                retry_after=1.0,
            )
        self.app.in_flight += 1
        self._counted = True
        try:
            for observer in self.app.observers:
                await observer.before(self.info)
            self.info.plan = self.plan
            for observer in self.app.observers:
                await observer.after_plan(self.info, self.plan)
            self._attempted = True
        except GatewayError as err:
            self.end(err.status, Usage(), err)
            raise

    def first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()

    def end(self, status: int, usage: Usage, error: GatewayError | str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if self._counted:
            self.app.in_flight -= 1
        info = self.info
        target = self.plan.targets[0]
        message = (
            error.kind.value + ": " + error.message[:300]
            if isinstance(error, GatewayError)
            else error
        )
        record = UsageRecord(
            request_id=info.request_id,
            time=time.time(),
            client_key=info.client_key,
            route=self.plan.name,
            backend=target.backend.id,
            model=target.selector,
            dialect=ADMIN_DIALECT,
            stream=info.stream,
            usage=usage,
            latency_ms=(time.monotonic() - info.started) * 1000,
            ttft_ms=(self.first_token_at - info.started) * 1000 if self.first_token_at else None,
            status=status,
            error=message,
            attempts=1 if self._attempted else 0,
        )
        for observer in self.app.observers:
            try:
                observer.finish(info, record)
            except Exception:  # an observer must never break the request path
                log.exception("observer %r failed", observer)
