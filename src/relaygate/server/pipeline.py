"""The request path every dialect frontend shares: resolve → execute the plan → relay →
record. Frontends only parse their own envelope and call :func:`generate`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from relaygate.backends.base import CallContext
from relaygate.canonical import ErrorKind, GatewayError, Usage
from relaygate.dialects import Dialect
from relaygate.routing.attempt import Call, Outcome, open_attempt
from relaygate.routing.cancel import DisconnectWatch, client_gone
from relaygate.routing.router import Plan, Target
from relaygate.routing.strategies import Execution, execute
from relaygate.server.http import (
    Receive,
    Scope,
    Send,
    next_request_id,
    send_bytes,
    send_error,
    stream_response,
)

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RequestInfo:
    """What the gateway knows about a client request while it runs."""

    request_id: str
    dialect: Dialect
    path: str
    body: dict[str, Any]
    model: str
    stream: bool
    started: float = field(default_factory=time.monotonic)
    client_key: str | None = None  # virtual key id (never the key itself)
    key_meta: dict[str, Any] = field(default_factory=dict)
    include_usage: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    plan: Plan | None = None


@dataclass(slots=True)
class UsageRecord:
    """One row of the usage ledger."""

    request_id: str
    time: float
    client_key: str | None
    route: str
    backend: str | None
    model: str | None
    dialect: str
    stream: bool
    usage: Usage
    latency_ms: float
    ttft_ms: float | None
    status: int
    error: str | None = None
    attempts: int = 0
    cost: float | None = None


class Observer(Protocol):
    """A subsystem that watches requests (limits, ledger, metrics). ``before`` may reject by
    raising :class:`GatewayError`; ``after_plan`` sees the route; ``finish`` gets the record."""

    async def before(self, info: RequestInfo) -> None: ...

    async def after_plan(self, info: RequestInfo, plan: Plan) -> None: ...

    def finish(self, info: RequestInfo, record: UsageRecord) -> None: ...


def new_request_id(scope: Scope) -> str:
    existing = (
        scope.get("state", {}).get("request_id") if isinstance(scope.get("state"), dict) else None
    )
    return existing or next_request_id()


def _headers(
    info: RequestInfo, execution: Execution, outcome: Outcome | None
) -> list[tuple[bytes, bytes]]:
    out = [
        (b"x-relaygate-request-id", info.request_id.encode()),
        (b"x-relaygate-attempts", str(len(execution.attempts)).encode()),
    ]
    if outcome is not None:
        out.append((b"x-relaygate-backend", outcome.target.backend.id.encode()))
        out.extend(outcome_headers(outcome))
    elif execution.attempts:
        out.append((b"x-relaygate-backend", execution.attempts[-1].backend.encode()))
    return out


# Subsystems add response headers computed from the outcome (cost, consensus…).
OUTCOME_HEADERS: list[Callable[[Outcome], list[tuple[bytes, bytes]]]] = []


def outcome_headers(outcome: Outcome) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for fn in OUTCOME_HEADERS:
        out.extend(fn(outcome))
    return out


async def generate(
    app: RelayApp, scope: Scope, receive: Receive, send: Send, info: RequestInfo
) -> None:
    gw = app.gateway
    execution = Execution()
    outcome: Outcome | None = None
    status = 200
    error: GatewayError | None = None
    watch: DisconnectWatch | None = None
    responded = False
    try:
        for observer in app.observers:
            await observer.before(info)
        if app.hooks_active:
            app.pm.hook.before_request(ctx=info)
        plan = gw.router.resolve(info.model)
        info.plan = plan
        for observer in app.observers:
            await observer.after_plan(info, plan)
        if app.hooks_active:
            app.pm.hook.on_route_selected(ctx=info, plan=plan)
        call = Call(
            client=info.dialect,
            body=info.body,
            stream=info.stream,
            ctx=CallContext(
                info.request_id,
                plan.timeouts or gw.timeouts,
                app.loop_guard,
                info.headers,
                info.path,
            ),
            include_usage=info.include_usage,
            want_canonical=plan.strategy == "consensus",
        )

        async def opener(target: Target) -> Outcome:
            return await open_attempt(call, target)

        # A client that leaves before the first byte cancels every attempt in flight.
        watch = DisconnectWatch(receive, scope)
        watch.arm()
        try:
            outcome = await execute(plan, opener, gw.config.retry, execution)
        except asyncio.CancelledError:
            if not watch.fired:
                raise
        finally:
            watch.disarm()
        if watch.gone:
            if outcome is not None:
                await outcome.aclose()
                outcome = None
            raise client_gone()
    except GatewayError as err:
        error = err
        status = err.status
        await send_error(send, info.path, err, _headers(info, execution, None))
        responded = True
    except Exception as exc:  # a bug: report it in the client's dialect, keep the cause in the log
        log.exception("request %s failed", info.request_id)
        error = GatewayError(ErrorKind.INTERNAL, f"internal error ({type(exc).__name__})")
        status = 500
        await send_error(send, info.path, error, _headers(info, execution, None))
        responded = True
    else:
        assert outcome is not None and watch is not None
        headers = _headers(info, execution, outcome)
        if outcome.chunks is None:
            assert outcome.body is not None
            await send_bytes(send, outcome.status, outcome.body, headers)
            responded = True
        else:
            ok = await stream_response(
                send,
                outcome.chunks,
                headers,
                info.dialect.CONTENT_TYPE_STREAM.encode(),
                watch,
                outcome.aclose,
                outcome.is_final,
            )
            responded = True
            # Whatever is left of the upstream (a translated stream's event source, a broken
            # connection) is released now, and the outcome ↔ close-callback cycle is broken, so
            # the request leaves no garbage for the cycle collector.
            await outcome.aclose()
            if not ok:
                status = 499
                error = GatewayError(ErrorKind.INVALID_REQUEST, "client disconnected", status=499)
            elif outcome.error is not None:
                error = outcome.error
                status = 200  # the client got a terminal error event inside a 200 stream
    finally:
        if watch is not None:
            watch.close(responded)
        finish_request(app, info, execution, outcome, status, error)


def finish_request(
    app: RelayApp,
    info: RequestInfo,
    execution: Execution,
    outcome: Outcome | None,
    status: int,
    error: GatewayError | None,
) -> None:
    """Build the request's :class:`UsageRecord` and hand it to every observer and hook."""
    now = time.monotonic()
    record = UsageRecord(
        request_id=info.request_id,
        time=time.time(),
        client_key=info.client_key,
        route=info.plan.name if info.plan else info.model,
        backend=outcome.target.backend.id
        if outcome
        else (execution.attempts[-1].backend if execution.attempts else None),
        model=outcome.target.selector if outcome else None,
        dialect=info.dialect.NAME,
        stream=info.stream,
        usage=outcome.usage if outcome else Usage(),
        latency_ms=(now - info.started) * 1000,
        ttft_ms=(outcome.first_token_at - info.started) * 1000
        if outcome and outcome.first_token_at
        else None,
        status=status,
        error=(error.kind.value + ": " + error.message[:300])
        if error
        else (outcome.error.message if outcome and outcome.error else None),
        attempts=len(execution.attempts),
    )
    for observer in app.observers:
        try:
            observer.finish(info, record)
        except Exception:  # an observer must never break the request path
            log.exception("observer %r failed", observer)
    if app.hooks_active:
        try:
            if error is not None:
                app.pm.hook.on_error(ctx=info, error=error)
            app.pm.hook.after_response(ctx=info, record=record)
        except Exception:
            log.exception("after_response hook failed")


AttemptOpener = Callable[[Target], Awaitable[Outcome]]
