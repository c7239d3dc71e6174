"""relaygate plugin: backend kind ``echo`` (canonical-only, no network)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from relaygate.backends.base import CallContext, RawReply
from relaygate.backends.registry import BackendKind, BuildContext
from relaygate.canonical import (
    BlockStop,
    ErrorKind,
    GatewayError,
    MessageStart,
    MessageStop,
    ModelInfo,
    Request,
    Response,
    Role,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    Usage,
    UsageEvent,
)
from relaygate.hooks import hookimpl


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend_prefix: str | None = None
    reverse: bool = True


class EchoBackend:
    kind = "echo"
    dialect = None

    def __init__(self, backend_id: str, options: EchoOptions) -> None:
        self.id = backend_id
        self.prefix = options.backend_prefix or backend_id
        self.options = options

    def _answer(self, request: Request) -> str:
        users = [m.text() for m in request.messages if m.role is Role.USER]
        text = users[-1] if users else ""
        return text[::-1] if self.options.reverse else text

    async def complete(self, request: Request, native_model: str, ctx: CallContext) -> Response:
        text = self._answer(request)
        return Response(
            id=f"echo-{ctx.request_id}",
            model=native_model,
            content=[TextPart(text)],
            usage=Usage(input_tokens=len(text.split()), output_tokens=len(text.split())),
            created=int(time.time()),
        )

    async def stream(
        self, request: Request, native_model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        text = self._answer(request)
        yield MessageStart(id=f"echo-{ctx.request_id}", model=native_model)
        yield TextStart(0)
        for word in text.split(" "):
            yield TextDelta(0, word + " ")
        yield BlockStop(0)
        yield UsageEvent(Usage(input_tokens=len(text.split()), output_tokens=len(text.split())))
        yield MessageStop(StopReason.END_TURN)

    async def forward(self, body: dict[str, Any], *, stream: bool, ctx: CallContext) -> RawReply:
        raise GatewayError(ErrorKind.INTERNAL, "echo has no fast path")

    async def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(id=f"{self.prefix}/mirror", native_id="mirror", backend=self.id)]

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "prefix": self.prefix, "dialect": None}

    async def aclose(self) -> None:
        pass


def _build(backend_id: str, options: EchoOptions, ctx: BuildContext) -> EchoBackend:
    return EchoBackend(backend_id, options)


@hookimpl
def register_backend_kinds(register: Any) -> None:
    register(BackendKind("echo", _build, options=EchoOptions, description="Example plugin: echoes"))
