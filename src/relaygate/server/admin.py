"""The provider admin API under ``/api/`` (ClosedPaw + AI Provider Kit), in the envelope of
:mod:`relaygate.server.envelope`, with a hand-built OpenAPI document at ``/api/openapi.json``.

When client auth is on, only the master key may call it. Provider keys never leave the process:
responses show whether a key is set, never the key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from relaygate.canonical import GatewayError, MessageStop, TextDelta, Usage, UsageEvent
from relaygate.config import pydantic_problems
from relaygate.manager import ProviderError, ProviderManager, ProviderSpec, ProviderUpdate
from relaygate.redact import redact
from relaygate.server.admin_calls import AdminCall
from relaygate.server.admin_store import KeyBody, StoreEndpoints
from relaygate.server.envelope import error_body, fail, ok

if TYPE_CHECKING:
    from relaygate.server.app import RelayApp

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


class GenerateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    provider: str | None = None
    model: str | None = None
    max_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0, le=2)
    stream: bool = False

    @model_validator(mode="after")
    def _one_input(self) -> GenerateBody:
        if not self.prompt and not self.messages:
            raise ValueError("give 'prompt' or 'messages'")
        return self

    def as_messages(self) -> list[dict[str, Any]]:
        return self.messages or [{"role": "user", "content": self.prompt}]


class TestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = "Hello, this is a test"
    model: str | None = None
    max_tokens: int = Field(50, gt=0)


def _json(data: bytes, status: int = 200) -> Response:
    return Response(data, status_code=status, media_type="application/json")


def _fail(code: str, message: str, status: int) -> Response:
    return _json(fail(code, message), status)


class AdminAPI:
    def __init__(self, app: RelayApp, manager: ProviderManager) -> None:
        self.app = app
        self.manager = manager

    # ------------------------------------------------------------------ plumbing

    def guarded(self, endpoint: Endpoint) -> Endpoint:
        async def run(request: Request) -> Response:
            if self.app.gateway.config.server.auth.enabled:
                meta = request.scope.get("state", {}).get("key_meta") or {}
                if not meta.get("master"):
                    return _fail("UNAUTHORIZED", "The admin API needs the master key.", 401)
            try:
                return await endpoint(request)
            except ProviderError as exc:
                return _fail(exc.code, exc.message, exc.status)
            except GatewayError as err:  # refused by limits, budgets or shutdown
                headers = {}
                if err.retry_after is not None:
                    headers["retry-after"] = str(max(1, int(err.retry_after + 0.999)))
                return Response(error_body(err), err.status, headers, media_type="application/json")
            except Exception as exc:
                log.exception("admin API %s failed", request.url.path)
                return _fail("INTERNAL_ERROR", f"internal error ({type(exc).__name__})", 500)

        return run

    async def body(self, request: Request, model: type[BaseModel]) -> Any:
        limit = self.app.gateway.config.server.max_body_bytes
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise ProviderError("INVALID_REQUEST", f"body larger than {limit} bytes", 413)
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise ProviderError("INVALID_REQUEST", f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ProviderError("INVALID_REQUEST", "body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            safe = {k: v for k, v in data.items() if k != "api_key"}
            raise ProviderError(
                "INVALID_REQUEST", redact("; ".join(pydantic_problems(exc, safe)))
            ) from None

    # ------------------------------------------------------------------ endpoints

    async def list_providers(self, request: Request) -> Response:
        return _json(ok([self.manager.describe(n) for n in self.manager.names()]))

    async def get_provider(self, request: Request) -> Response:
        return _json(ok(self.manager.describe(request.path_params["name"])))

    async def put_provider(self, request: Request) -> Response:
        changes = await self.body(request, ProviderUpdate)
        return _json(ok(await self.manager.update(request.path_params["name"], changes)))

    async def register(self, request: Request) -> Response:
        spec = await self.body(request, ProviderSpec)
        return _json(ok(await self.manager.register(spec)), 201)

    async def set_default(self, request: Request) -> Response:
        name = request.path_params["name"]
        await self.manager.set_default(name)
        return _json(ok({"default": name}))

    async def health_all(self, request: Request) -> Response:
        return _json(ok(await self.manager.health_check_all()))

    async def health_one(self, request: Request) -> Response:
        return _json(ok(await self.manager.health_check(request.path_params["name"])))

    async def models_one(self, request: Request) -> Response:
        return _json(ok(await self.manager.list_models(request.path_params["name"])))

    async def models_all(self, request: Request) -> Response:
        return _json(ok(await self.manager.list_all_models()))

    async def _complete(
        self, request: Request, messages: list[dict[str, Any]], **options: Any
    ) -> dict[str, Any]:
        """A non-streamed generation, observed like client traffic (ledger, limits, metrics)."""
        backend, native, prepared = self.manager.prepare(messages, **options)
        call = AdminCall(self.app, request, backend, native, stream=False)
        await call.begin()
        started = time.monotonic()
        try:
            response = await self.manager.complete(backend, native, prepared)
        except ProviderError as exc:
            call.end(exc.status, Usage(), exc.message)
            raise
        except BaseException as exc:
            call.end(500, Usage(), f"internal: {type(exc).__name__}")
            raise
        call.first_token()
        call.end(200, response.usage)
        return self.manager.summary(backend, native, response, started)

    async def test_provider(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.manager.get(name)
        body = await self.body(request, TestBody)
        result = await self._complete(
            request,
            [{"role": "user", "content": body.prompt}],
            provider=name,
            model=body.model,
            max_tokens=body.max_tokens,
        )
        return _json(ok({"success": True, **result}))

    async def generate(self, request: Request) -> Response:
        body = await self.body(request, GenerateBody)
        options: dict[str, Any] = dict(
            provider=body.provider,
            model=body.model,
            max_tokens=body.max_tokens,
            temperature=body.temperature,
        )
        if not body.stream:
            return _json(ok(await self._complete(request, body.as_messages(), **options)))
        backend, native, prepared = self.manager.prepare(body.as_messages(), **options)
        call = AdminCall(self.app, request, backend, native, stream=True)
        await call.begin()
        events = self.manager.open_stream(backend, native, prepared)

        async def sse() -> AsyncIterator[bytes]:
            usage: dict[str, int] = {}
            counted = Usage()
            # Unless the stream reaches its end, the client went away.
            status: int = 499
            error: str | None = "client disconnected"
            try:
                async for event in events:
                    if isinstance(event, TextDelta):
                        call.first_token()
                        yield b"data: " + ok({"content": event.text}) + b"\n\n"
                    elif isinstance(event, UsageEvent):
                        counted = u = event.usage
                        usage = {
                            "prompt_tokens": u.input_tokens,
                            "completion_tokens": u.output_tokens,
                            "total_tokens": u.total_tokens,
                        }
                    elif isinstance(event, MessageStop):
                        break
                    elif getattr(event, "kind", "") == "error":
                        status, error = 502, redact(getattr(event, "error").message)  # noqa: B009
                        yield b"data: " + fail("GENERATION_ERROR", error) + b"\n\n"
                        return
                status, error = 200, None
            except Exception as exc:
                status, error = 502, redact(getattr(exc, "message", type(exc).__name__))
                yield b"data: " + fail("GENERATION_ERROR", f"{backend.id}: {error}") + b"\n\n"
                return
            finally:
                call.end(status, counted, error)
            yield b"data: " + ok({"done": True, "provider": backend.id, "usage": usage}) + b"\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream")

    async def openapi(self, request: Request) -> Response:
        return _json(json.dumps(openapi_document()).encode())

    def routes(self) -> list[Route]:
        g = self.guarded
        return [
            Route("/api/openapi.json", self.openapi, methods=["GET"]),
            Route("/api/providers", g(self.list_providers), methods=["GET"]),
            Route("/api/providers/register", g(self.register), methods=["POST"]),
            Route("/api/providers/health", g(self.health_all), methods=["GET"]),
            Route("/api/providers/models", g(self.models_all), methods=["GET"]),
            Route("/api/providers/{name}", g(self.get_provider), methods=["GET"]),
            Route("/api/providers/{name}", g(self.put_provider), methods=["PUT"]),
            Route("/api/providers/{name}/default", g(self.set_default), methods=["POST"]),
            Route("/api/providers/{name}/health", g(self.health_one), methods=["GET"]),
            Route("/api/providers/{name}/models", g(self.models_one), methods=["GET"]),
            Route("/api/providers/{name}/test", g(self.test_provider), methods=["POST"]),
            Route("/api/generate", g(self.generate), methods=["POST"]),
        ]


# ----------------------------------------------------------------------------- OpenAPI

_ENDPOINTS: list[tuple[str, str, str, type[BaseModel] | None]] = [
    ("get", "/api/providers", "List providers", None),
    ("post", "/api/providers/register", "Register a provider at run time", ProviderSpec),
    ("get", "/api/providers/health", "Health of every provider", None),
    ("get", "/api/providers/models", "Models of every provider", None),
    ("get", "/api/providers/{name}", "One provider", None),
    ("put", "/api/providers/{name}", "Update a run-time provider", ProviderUpdate),
    ("post", "/api/providers/{name}/default", "Make a provider the default", None),
    ("get", "/api/providers/{name}/health", "Health of one provider, with latency", None),
    ("get", "/api/providers/{name}/models", "Models of one provider", None),
    ("post", "/api/providers/{name}/test", "Test a provider with a small generation", TestBody),
    ("post", "/api/generate", "Generate text (prompt or messages)", GenerateBody),
    ("post", "/api/config/reload", "Validate and swap in the config file", None),
    ("get", "/api/keys", "List virtual keys (never their secrets)", None),
    ("post", "/api/keys", "Create a virtual key (shown once)", KeyBody),
    ("delete", "/api/keys/{key_id}", "Revoke a virtual key", None),
    (
        "get",
        "/api/usage/summary",
        "Usage ledger summary (?by=backend|model|route|key_id&hours=N)",
        None,
    ),
]


def openapi_document() -> dict[str, Any]:
    envelope_ok = {
        "type": "object",
        "properties": {"success": {"const": True}, "data": {}},
        "required": ["success", "data"],
    }
    envelope_err = {
        "type": "object",
        "properties": {
            "success": {"const": False},
            "error": {
                "type": "object",
                "properties": {
                    "code": {
                        "enum": [
                            "INVALID_REQUEST",
                            "PROVIDER_NOT_FOUND",
                            "UNAUTHORIZED",
                            "METHOD_NOT_ALLOWED",
                            "GENERATION_ERROR",
                            "INTERNAL_ERROR",
                        ]
                    },
                    "message": {"type": "string"},
                },
                "required": ["code", "message"],
            },
        },
        "required": ["success", "error"],
    }
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Ok": envelope_ok, "Error": envelope_err}
    for method, path, summary, model in _ENDPOINTS:
        op: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "success",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Ok"}}
                    },
                },
                "default": {
                    "description": "error",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        for param in ("name", "key_id"):
            if "{" + param + "}" in path:
                op["parameters"] = [
                    {"name": param, "in": "path", "required": True, "schema": {"type": "string"}}
                ]
        if model is not None:
            schemas[model.__name__] = model.model_json_schema(by_alias=True)
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                    }
                },
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "relaygate admin API", "version": "1"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def install(app: RelayApp) -> None:
    manager = ProviderManager(
        app,
        store=app.state.get("store"),
        vault=app.state.get("vault"),
        loop_guard=lambda: str(app.loop_guard),
    )
    app.state["providers"] = manager
    api = AdminAPI(app, manager)
    app.routes.extend(api.routes())
    app.routes.extend(StoreEndpoints(api).routes())

    async def start(app: RelayApp) -> None:
        await manager.load()

        async def stop() -> None:
            await manager.close_all()

        app.shutdown_callbacks.append(stop)

    app.lifecycle.append(start)
