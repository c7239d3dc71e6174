"""``POST /v1/embeddings``: a pass-through to backends whose API has embeddings.

The body goes upstream as the client sent it, with only ``model`` rewritten; the targets of a
route are tried in order until one answers (a backend without embeddings is skipped). Limits
and the ledger see the request like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relaygate import dialects
from relaygate.backends.base import CallContext
from relaygate.canonical import ErrorKind, GatewayError, Usage, invalid
from relaygate.routing.attempt import Outcome
from relaygate.routing.strategies import Execution
from relaygate.server import app as app_module
from relaygate.server.frontends import _attach_key, read_json
from relaygate.server.http import Receive, Scope, Send, send_bytes
from relaygate.server.pipeline import RequestInfo, finish_request, new_request_id

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp


def precheck(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("you must provide a model parameter", "model")
    value = body.get("input")
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not value:
        raise invalid(
            "'input' must be a string or a non-empty array of strings or token arrays.", "input"
        )
    for i, item in enumerate(value):
        if not isinstance(item, str | int | list):
            raise invalid(f"'input[{i}]' must be a string or an array of token ids.", f"input[{i}]")


async def embeddings(app: RelayApp, scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_json(app, receive)
    precheck(body)
    info = RequestInfo(
        request_id=new_request_id(scope),
        dialect=dialects.get(dialects.OPENAI_CHAT),
        path=scope["path"],
        body=body,
        model=body["model"],
        stream=False,
    )
    _attach_key(scope, info)
    execution = Execution()
    outcome: Outcome | None = None
    status, error = 200, None
    try:
        for observer in app.observers:
            await observer.before(info)
        gw = app.gateway
        plan = gw.router.resolve(info.model)
        info.plan = plan
        for observer in app.observers:
            await observer.after_plan(info, plan)
        ctx = CallContext(info.request_id, gw.timeouts, app.loop_guard, {}, info.path)
        last: GatewayError | None = None
        for target in plan.targets:
            call = getattr(target.backend, "embeddings", None)
            if call is None:
                continue
            upstream = dict(body)
            upstream["model"] = target.native_id
            try:
                raw: bytes = await call(upstream, ctx)
            except GatewayError as err:
                execution.record(target, err)
                last = err
                if not err.retryable:
                    raise
                continue
            execution.record(target, None)
            outcome = Outcome(target, 200, body=raw, usage=_usage(raw), completed=True)
            await send_bytes(
                send,
                200,
                raw,
                [
                    (b"x-relaygate-request-id", info.request_id.encode()),
                    (b"x-relaygate-backend", target.backend.id.encode()),
                    (b"x-relaygate-attempts", str(len(execution.attempts)).encode()),
                ],
            )
            return
        raise last or GatewayError(
            ErrorKind.INVALID_REQUEST,
            f"No backend of `{info.model}` offers embeddings; use an OpenAI-compatible backend.",
            param="model",
        )
    except GatewayError as err:
        status, error = err.status, err
        raise
    finally:
        finish_request(app, info, execution, outcome, status, error)


def _usage(raw: bytes) -> Usage:
    try:
        reported = orjson.loads(raw).get("usage") or {}
        return Usage(input_tokens=int(reported.get("prompt_tokens") or 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return Usage()


def install(app: RelayApp) -> None:
    app_module.HOT_ROUTES[("POST", "/v1/embeddings")] = embeddings
    app_module.HOT_ROUTES[("POST", "/embeddings")] = embeddings
