"""Client-facing generation routes, one small function per dialect envelope.

Each reads the body, checks the few fields needed to route (the model, the stream flag, the
shape of the conversation) without building the canonical request, and hands over to
:func:`relaygate.server.pipeline.generate`. Full parsing happens only if translation is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relaygate import dialects
from relaygate.canonical import ErrorKind, GatewayError, invalid
from relaygate.server.http import Receive, Scope, Send, read_body
from relaygate.server.pipeline import RequestInfo, generate, new_request_id

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp


async def read_json(app: RelayApp, receive: Receive) -> dict[str, Any]:
    raw = await read_body(receive, app.gateway.config.server.max_body_bytes)
    if not raw:
        raise invalid("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(
            f"The request body is not valid JSON ({exc.msg} at position {exc.pos})."
        ) from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(body):
        raise invalid(f"The request body is nested more than {MAX_DEPTH} levels deep; flatten it.")
    return body


# orjson reads 1,024 levels of nesting but writes only 254: a body between the two would parse
# here and fail later, when relayed or translated, as a 500. The bracket count (C speed) spares
# ordinary bodies the check.
MAX_DEPTH = 254


def _too_deep(body: dict[str, Any]) -> bool:
    try:
        orjson.dumps(body)
    except TypeError:
        return True
    return False


_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INTEGERS = ("max_tokens", "max_completion_tokens", "n", "seed")
_CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def precheck_chat(body: dict[str, Any]) -> None:
    """The checks OpenAI itself makes first; cheap enough for the fast path."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid(
            "'messages' is a required property and must be a non-empty array.", "messages"
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"'messages[{i}]' must be an object.", f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in _CHAT_ROLES:
            raise invalid(
                f"Invalid value for 'messages[{i}].role': {message.get('role')!r}.",
                f"messages[{i}].role",
            )
    for key in _NUMBERS:
        value = body.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise invalid(f"'{key}' must be a number.", key)
    for key in _INTEGERS:
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise invalid(f"'{key}' must be an integer.", key)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("'stream' must be a boolean.", "stream")
    if "tools" in body and not isinstance(body["tools"], list):
        raise invalid("'tools' must be an array.", "tools")


async def chat_completions(app: RelayApp, scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_json(app, receive)
    precheck_chat(body)
    options = body.get("stream_options")
    info = RequestInfo(
        request_id=new_request_id(scope),
        dialect=dialects.get(dialects.OPENAI_CHAT),
        path=scope["path"],
        body=body,
        model=body["model"],
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
    )
    _attach_key(scope, info)
    await generate(app, scope, receive, send, info)


def _attach_key(scope: Scope, info: RequestInfo) -> None:
    state = scope.get("state")
    if isinstance(state, dict):
        info.client_key = state.get("client_key")
        meta = state.get("key_meta")
        if isinstance(meta, dict):
            info.key_meta = meta


def not_found(path: str) -> GatewayError:
    return GatewayError(ErrorKind.NOT_FOUND, f"Unknown path {path}.", code="unknown_url")
