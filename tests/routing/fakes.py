"""Scripted openers for strategy tests: no network, no sleeps beyond an event wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from relaygate.canonical import ErrorKind, GatewayError, Response, TextPart, Usage
from relaygate.config import RetryConfig, RouteConfig
from relaygate.routing.attempt import Outcome
from relaygate.routing.router import Plan, Target
from relaygate.routing.state import RoutingState


@dataclass
class FakeBackend:
    id: str
    keys: tuple[str, ...] = ("k",)

    @property
    def prefix(self) -> str:
        return self.id


Behaviour = Callable[[Target], Awaitable[Outcome]]


def ok(text: str = "hi", *, stream: bool = False) -> Behaviour:
    async def run(target: Target) -> Outcome:
        if stream:

            async def chunks() -> AsyncIterator[bytes]:
                yield b"data: x\n\n"

            return Outcome(target, 200, chunks=chunks(), completed=True)
        response = Response("r", target.native_id, [TextPart(text)], usage=Usage(1, 1))
        return Outcome(
            target,
            200,
            body=orjson.dumps({"text": text}),
            response=response,
            usage=Usage(1, 1),
            completed=True,
            render=lambda r: orjson.dumps({"text": r.text()}),
        )

    return run


def fail(kind: ErrorKind = ErrorKind.UPSTREAM, *, retry_after: float | None = None) -> Behaviour:
    async def run(target: Target) -> Outcome:
        raise GatewayError(kind, f"{kind.value} from {target.backend.id}", retry_after=retry_after)

    return run


def gated(event: asyncio.Event, then: Behaviour, cancelled: list[str]) -> Behaviour:
    """Waits for ``event`` (never set → forever), recording a cancellation."""

    async def run(target: Target) -> Outcome:
        try:
            await event.wait()
        except asyncio.CancelledError:
            cancelled.append(target.backend.id)
            raise
        return await then(target)

    return run


@dataclass
class Script:
    """Per-backend queues of behaviours (the last one repeats)."""

    plans: dict[str, list[Behaviour]]
    calls: list[str] = field(default_factory=list)

    async def __call__(self, target: Target) -> Outcome:
        self.calls.append(target.backend.id)
        queue = self.plans[target.backend.id]
        behaviour = queue.pop(0) if len(queue) > 1 else queue[0]
        return await behaviour(target)


def plan(
    strategy: str,
    ids: list[str],
    *,
    weights: list[float] | None = None,
    state: RoutingState | None = None,
    **route: Any,
) -> Plan:
    config = RouteConfig(
        name="r",
        strategy=strategy if strategy != "single" else "fallback",
        targets=[f"{i}/m" for i in ids],
        weights=weights,
        **route,
    )
    targets = [
        Target(FakeBackend(i), "m", f"{i}/m", weight=(weights or [1.0] * len(ids))[n])  # type: ignore[arg-type]
        for n, i in enumerate(ids)
    ]
    return Plan("r", strategy, targets, config, state=state or RoutingState(sleep=no_sleep))


async def no_sleep(seconds: float) -> None:
    SLEPT.append(seconds)


SLEPT: list[float] = []

RETRY = RetryConfig(attempts=2, backoff_base=0.01, backoff_max=0.02, retry_after_cap=5)
