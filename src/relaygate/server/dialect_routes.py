"""Client routes of the Anthropic, OpenAI Responses and Gemini dialects.

Like :mod:`relaygate.server.frontends`, each handler only reads its envelope, checks the few
fields the dialect itself checks first (so bad input gets that dialect's own 400 at once, on the
fast path too) and hands over to :func:`relaygate.server.pipeline.generate`.

* ``POST /v1/messages`` (Claude Code adds ``?beta=true``), ``POST /v1/messages/count_tokens``
* ``POST /v1/responses`` (state: :mod:`relaygate.server.responses_state`)
* ``POST /{v1beta,v1}/models/{model}:{generateContent,streamGenerateContent,countTokens}`` —
  the model segment may contain ``/`` (``openrouter/some-model``)
* ``GET /v1beta/models`` (and ``/v1/models`` when the caller is a Gemini client), ``GET
  /v1beta/models/{model}``; the Anthropic list shape is served by ``server/app.py``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson

from relaygate import dialects
from relaygate.canonical import (
    ErrorKind,
    GatewayError,
    ImagePart,
    ModelInfo,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    invalid,
)
from relaygate.dialects import Dialect, StreamParser, StreamRenderer, StreamWatch
from relaygate.server import app as app_module
from relaygate.server.frontends import _attach_key, read_json
from relaygate.server.http import Receive, Scope, Send, header, send_bytes
from relaygate.server.pipeline import RequestInfo, generate, new_request_id

if TYPE_CHECKING:
    from relaygate.backends.base import CallContext
    from relaygate.routing.router import Target
    from relaygate.server.app import RelayApp

ESTIMATE_HEADER = (b"x-relaygate-token-count", b"estimate")
_GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/")
_FORWARDED_HEADERS = ("anthropic-beta", "anthropic-version")


# --------------------------------------------------------------------------- prechecks


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_common(body: dict[str, Any], numbers: tuple[str, ...], ints: tuple[str, ...]) -> None:
    for key in numbers:
        value = body.get(key)
        if value is not None and not _is_number(value):
            raise invalid(f"{key}: Input should be a valid number", key)
    for key in ints:
        value = body.get(key)
        if value is not None and not _is_int(value):
            raise invalid(f"{key}: Input should be a valid integer", key)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream: Input should be a valid boolean", "stream")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list", "tools")


def precheck_anthropic(body: dict[str, Any], *, count: bool = False) -> None:
    """What the Messages API rejects before looking at the model."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: Field required", "model")
    if not count:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise invalid("max_tokens: Field required", "max_tokens")
        if not _is_int(max_tokens) or max_tokens < 1:
            raise invalid("max_tokens: Input should be a positive integer", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid("messages: Field required (a list of messages)", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages.{i}: Input should be a valid dictionary", f"messages.{i}")
        if message.get("role") not in ("user", "assistant", "system"):
            raise invalid(
                f"messages.{i}.role: Input should be 'user' or 'assistant'", f"messages.{i}.role"
            )
        content = message.get("content")
        if not isinstance(content, str | list):
            raise invalid(
                f"messages.{i}.content: Input should be a string or a list of content blocks",
                f"messages.{i}.content",
            )
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise invalid("system: Input should be a string or a list of text blocks", "system")
    _check_common(body, ("temperature", "top_p"), ("top_k",))


def precheck_responses(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("Missing required parameter: 'model'.", "model")
    raw = body.get("input")
    if raw is not None and not isinstance(raw, str | list):
        raise invalid("Invalid type for 'input': expected a string or an array.", "input")
    if raw is None and not any(k in body for k in ("previous_response_id", "conversation")):
        raise invalid("Missing required parameter: 'input'.", "input")
    prev = body.get("previous_response_id")
    if prev is not None and not isinstance(prev, str):
        raise invalid(
            "Invalid type for 'previous_response_id': expected a string.", "previous_response_id"
        )
    store = body.get("store")
    if store is not None and not isinstance(store, bool):
        raise invalid("Invalid type for 'store': expected a boolean.", "store")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("Invalid type for 'instructions': expected a string.", "instructions")
    _check_common(body, ("temperature", "top_p"), ("max_output_tokens",))


def precheck_gemini(body: dict[str, Any]) -> None:
    contents = body.get("contents")
    if contents is None:
        raise invalid("* GenerateContentRequest.contents: contents is not specified", "contents")
    if not isinstance(contents, list):
        raise invalid("Invalid value at 'contents': expected a list of Content", "contents")
    if not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified", "contents")
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise invalid(
                f"Invalid value at 'contents[{i}]': expected a Content object", f"contents[{i}]"
            )
        parts = content.get("parts")
        if not isinstance(parts, list):
            raise invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.",
                f"contents[{i}].parts",
            )
    config = body.get("generationConfig", body.get("generation_config"))
    if config is not None:
        if not isinstance(config, dict):
            raise invalid(
                "Invalid value at 'generation_config': expected an object", "generationConfig"
            )
        for key in ("temperature", "topP", "top_p"):
            if config.get(key) is not None and not _is_number(config[key]):
                raise invalid(f"Invalid value at 'generation_config.{key}' (TYPE_FLOAT)", key)
        for key in ("maxOutputTokens", "max_output_tokens", "topK", "top_k", "candidateCount"):
            if config.get(key) is not None and not _is_int(config[key]):
                raise invalid(f"Invalid value at 'generation_config.{key}' (TYPE_INT32)", key)
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("Invalid value at 'tools': expected a list of Tool", "tools")


# --------------------------------------------------------------------------- Anthropic


def _client_headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _FORWARDED_HEADERS:
        value = header(scope, name.encode())
        if value:
            out[name] = value
    return out


async def anthropic_messages(app: RelayApp, scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_json(app, receive)
    precheck_anthropic(body)
    info = RequestInfo(
        request_id=new_request_id(scope),
        dialect=dialects.get(dialects.ANTHROPIC),
        path=scope["path"],
        body=body,
        model=body["model"],
        stream=body.get("stream") is True,
        headers=_client_headers(scope),
    )
    _attach_key(scope, info)
    await generate(app, scope, receive, send, info)


async def anthropic_count_tokens(app: RelayApp, scope: Scope, receive: Receive, send: Send) -> None:
    from relaygate.dialects import anthropic

    body = await read_json(app, receive)
    precheck_anthropic(body, count=True)
    request = anthropic.count_tokens_request(body)
    target, ctx = _first_target(app, scope, body["model"], _client_headers(scope))
    backend: Any = target.backend
    if backend.dialect == dialects.ANTHROPIC and hasattr(backend, "count_tokens"):
        upstream = dict(body)
        upstream["model"] = target.native_id
        upstream.pop("max_tokens", None)
        upstream.pop("stream", None)
        await send_bytes(send, 200, await backend.count_tokens(upstream, ctx))
        return
    n = await _count_elsewhere(target, request, ctx)
    headers = [] if n is not None else [ESTIMATE_HEADER]
    await send_bytes(
        send,
        200,
        anthropic.render_count_tokens(n if n is not None else estimate_tokens(request)),
        headers,
    )


# --------------------------------------------------------------------------- Responses


async def responses_create(app: RelayApp, scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_json(app, receive)
    precheck_responses(body)
    info = RequestInfo(
        request_id=new_request_id(scope),
        dialect=dialects.get(dialects.OPENAI_RESPONSES),
        path=scope["path"],
        body=body,
        model=body["model"],
        stream=body.get("stream") is True,
    )
    _attach_key(scope, info)
    state = app.state.get("responses_state")
    if state is not None:
        await state.run(app, scope, receive, send, info)
        return
    if body.get("previous_response_id") is not None:
        raise invalid(
            "previous_response_id needs the responses_state subsystem, which is not installed.",
            "previous_response_id",
        )
    await generate(app, scope, receive, send, info)


# --------------------------------------------------------------------------- Gemini


class GeminiArrayDialect:
    """The Gemini dialect for ``:streamGenerateContent`` *without* ``?alt=sse``: the stream is a
    JSON array written progressively (``application/json``), everything else is unchanged."""

    NAME = dialects.GEMINI
    CONTENT_TYPE_STREAM = "application/json"

    def __init__(self) -> None:
        self._g: Dialect = dialects.get(dialects.GEMINI)

    def parse_request(self, body: dict[str, Any]) -> Request:
        return self._g.parse_request(body)

    def render_response(self, response: Response) -> bytes:
        return self._g.render_response(response)

    def make_renderer(self, model: str) -> StreamRenderer:
        from relaygate.dialects import gemini

        return gemini.make_renderer(model, sse=False)

    def render_error(self, err: GatewayError) -> bytes:
        return self._g.render_error(err)

    def render_models(self, models: list[ModelInfo]) -> bytes:
        return self._g.render_models(models)

    def make_watch(self) -> StreamWatch:
        return self._g.make_watch()

    def build_request(self, request: Request, native_model: str) -> dict[str, Any]:
        return self._g.build_request(request, native_model)

    def parse_response(self, body: dict[str, Any]) -> Response:
        return self._g.parse_response(body)

    def response_usage(self, body: dict[str, Any]) -> Usage:
        return self._g.response_usage(body)

    def make_parser(self) -> StreamParser:
        return self._g.make_parser()

    def parse_error(self, status: int, body: bytes) -> GatewayError:
        return self._g.parse_error(status, body)


_ARRAY = GeminiArrayDialect()


def _gemini_tail(path: str) -> str:
    for prefix in _GEMINI_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


async def gemini_generate(app: RelayApp, scope: Scope, receive: Receive, send: Send) -> None:
    from relaygate.backends.gemini import ARRAY_MODE
    from relaygate.dialects import gemini

    path = scope["path"]
    model, method = gemini.parse_model_path(_gemini_tail(path))
    body = await read_json(app, receive)
    precheck_gemini(body) if method != "countTokens" else _precheck_count(body)
    if method == "countTokens":
        await _gemini_count(app, scope, send, model, body)
        return
    stream = method == "streamGenerateContent"
    sse = b"alt=sse" in scope.get("query_string", b"")
    dialect: Dialect = dialects.get(dialects.GEMINI) if (sse or not stream) else _ARRAY
    info = RequestInfo(
        request_id=new_request_id(scope),
        dialect=dialect,
        # The backend reads the stream framing from the path it is told (see backends.gemini).
        path=path if (sse or not stream) else f"{path}?{ARRAY_MODE}",
        body=body,
        model=model,
        stream=stream,
    )
    _attach_key(scope, info)
    await generate(app, scope, receive, send, info)


def _precheck_count(body: dict[str, Any]) -> None:
    inner = body.get("generateContentRequest")
    if isinstance(inner, dict):
        precheck_gemini(inner)
    else:
        precheck_gemini(body)


async def _gemini_count(
    app: RelayApp, scope: Scope, send: Send, model: str, body: dict[str, Any]
) -> None:
    from relaygate.dialects import gemini

    inner = body.get("generateContentRequest")
    request = gemini.parse_request(inner if isinstance(inner, dict) else body)
    target, ctx = _first_target(app, scope, model, {})
    backend: Any = target.backend
    if backend.dialect == dialects.GEMINI and hasattr(backend, "count_tokens"):
        upstream = {"contents": body["contents"]} if "contents" in body else dict(body)
        await send_bytes(send, 200, await backend.count_tokens(target.native_id, upstream, ctx))
        return
    n = await _count_elsewhere(target, request, ctx)
    headers = [] if n is not None else [ESTIMATE_HEADER]
    total = n if n is not None else estimate_tokens(request)
    await send_bytes(send, 200, orjson.dumps({"totalTokens": total}), headers)


def _gemini_client(scope: Scope) -> bool:
    if header(scope, b"x-goog-api-key") or header(scope, b"x-goog-api-client"):
        return True
    return b"key=" in scope.get("query_string", b"")


def _inventory(app: RelayApp) -> list[ModelInfo]:
    gw = app.gateway
    models = list(gw.models)
    for route in gw.config.routes:
        models.append(
            ModelInfo(id=route.name, native_id=route.name, backend="route", owned_by="relaygate")
        )
    return models


async def gemini_models(app: RelayApp, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/v1/models" and not _gemini_client(scope):
        await app.fallback(scope, receive, send)  # OpenAI and Anthropic list shapes
        return
    await send_bytes(send, 200, dialects.get(dialects.GEMINI).render_models(_inventory(app)))


async def gemini_model(app: RelayApp, scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    if path.startswith("/v1/models/") and not _gemini_client(scope):
        await app.fallback(scope, receive, send)
        return
    wanted = _gemini_tail(path)
    for model in _inventory(app):
        if model.id == wanted:
            listing = orjson.loads(dialects.get(dialects.GEMINI).render_models([model]))
            await send_bytes(send, 200, orjson.dumps(listing["models"][0]))
            return
    raise GatewayError(
        ErrorKind.NOT_FOUND,
        f"models/{wanted} is not found for API version v1beta, or is not supported.",
    )


# --------------------------------------------------------------------------- token counting


def _first_target(
    app: RelayApp, scope: Scope, model: str, headers: dict[str, str]
) -> tuple[Target, CallContext]:
    from relaygate.backends.base import CallContext

    gw = app.gateway
    plan = gw.router.resolve(model)
    if not plan.targets:
        raise GatewayError(ErrorKind.NOT_FOUND, f"The model `{model}` has no target.")
    ctx = CallContext(new_request_id(scope), gw.timeouts, app.loop_guard, headers, scope["path"])
    return plan.targets[0], ctx


async def _count_elsewhere(target: Target, request: Request, ctx: CallContext) -> int | None:
    """An exact count from a backend of another dialect, where its API has one."""
    backend: Any = target.backend
    if backend.dialect == dialects.GEMINI and hasattr(backend, "count_tokens"):
        body = dialects.get(dialects.GEMINI).build_request(request, target.native_id)
        raw = await backend.count_tokens(target.native_id, {"contents": body["contents"]}, ctx)
        total = orjson.loads(raw).get("totalTokens")
        return int(total) if isinstance(total, int) else None
    if backend.dialect == dialects.ANTHROPIC and hasattr(backend, "count_tokens"):
        body = dialects.get(dialects.ANTHROPIC).build_request(request, target.native_id)
        body.pop("max_tokens", None)
        raw = await backend.count_tokens(body, ctx)
        n = orjson.loads(raw).get("input_tokens")
        return int(n) if isinstance(n, int) else None
    return None


def estimate_tokens(request: Request) -> int:
    """A tokenizer-free estimate (about four characters per token) for backends that cannot
    count; responses carrying it are marked with ``x-relaygate-token-count: estimate``."""
    chars = sum(len(p.text) for p in request.system)
    for message in request.messages:
        for part in message.content:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ToolCallPart):
                chars += len(part.name) + len(part.arguments)
            elif isinstance(part, ToolResultPart):
                chars += sum(len(c.text) for c in part.content if isinstance(c, TextPart))
                chars += 1000 * sum(1 for c in part.content if isinstance(c, ImagePart))
            elif isinstance(part, ImagePart):
                chars += 1000 * 4  # Anthropic bills a mid-sized image at roughly 1,000 tokens
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "")
        chars += len(orjson.dumps(tool.parameters)) if tool.parameters else 0
    return max(1, math.ceil(chars / 4))


# --------------------------------------------------------------------------- install


def install(app: RelayApp) -> None:
    hot = app_module.HOT_ROUTES
    hot[("POST", "/v1/messages")] = anthropic_messages
    hot[("POST", "/v1/messages/count_tokens")] = anthropic_count_tokens
    hot[("POST", "/v1/responses")] = responses_create
    hot[("GET", "/v1beta/models")] = gemini_models
    hot[("GET", "/v1/models")] = gemini_models
    for entry in (
        ("POST", "/v1beta/models/", gemini_generate),
        ("POST", "/v1/models/", gemini_generate),
        ("GET", "/v1beta/models/", gemini_model),
        ("GET", "/v1/models/", gemini_model),
    ):
        if entry not in app_module.PREFIX_ROUTES:
            app_module.PREFIX_ROUTES.append(entry)
