"""Example relaygate plugin: a tiny policy, a tag, and an audit trail through request hooks."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.hooks import hookimpl

AUDIT: list[dict[str, Any]] = []
ROUTES: dict[str, str] = {}
ERRORS: Counter[str] = Counter()


def _blocked() -> str:
    return os.environ.get("RELAYGATE_EXAMPLE_BLOCKED", "forbidden-topic")


def _texts(body: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return out


@hookimpl
def before_request(ctx: Any) -> None:
    word = _blocked()
    if any(word in text for text in _texts(ctx.body)):
        raise GatewayError(ErrorKind.PERMISSION, f"Requests about '{word}' are not allowed here.")
    ctx.body.setdefault("user", "relaygate-example")


@hookimpl
def on_route_selected(ctx: Any, plan: Any) -> None:
    ROUTES[ctx.request_id] = plan.name


@hookimpl
def after_response(ctx: Any, record: Any) -> None:
    AUDIT.append(
        {
            "request_id": record.request_id,
            "backend": record.backend,
            "status": record.status,
            "tokens": record.usage.total_tokens,
        }
    )


@hookimpl
def on_error(ctx: Any, error: Any) -> None:
    ERRORS[error.kind.value] += 1
