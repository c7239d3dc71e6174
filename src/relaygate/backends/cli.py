"""CLI-agent backends (the aigate pattern): ``cli-claude``, ``cli-gemini``, ``cli-codex``.

Each request runs the agent's CLI once as an asyncio subprocess — no shell, the prompt on stdin,
the answer on stdout — in its own process group, so a timeout or a client that goes away kills
the CLI *and* everything it started. A missing binary is reported with the npm package that
provides it; a non-zero exit or unreadable output becomes a 502 carrying a redacted summary of
the CLI's stderr.

* ``cli-claude``: ``claude -p --output-format json`` (or ``stream-json --verbose
  --include-partial-messages`` when streaming), which also reports token usage; the system prompt
  travels in ``--system-prompt``, so trusted instructions stay apart from untrusted content.
* ``cli-gemini``: ``gemini [-m MODEL]`` with the prompt on stdin; plain text out.
* ``cli-codex``: ``codex exec --skip-git-repo-check [-m MODEL] -`` (``-`` = prompt on stdin).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
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
    Usage,
    UsageEvent,
)
from relaygate.redact import redact

STDERR_SUMMARY_CHARS = 400


class CliOptions(BaseModel):
    """The ``config:`` block of a CLI-agent backend."""

    model_config = ConfigDict(extra="forbid")

    backend_prefix: str | None = None
    command: str | None = Field(None, description="binary name or path (default: the CLI's name)")
    args: list[str] = Field(default_factory=list, description="extra arguments, before the prompt")
    models: list[str] | None = Field(None, description="model names offered (default per CLI)")
    timeout: float = Field(300.0, gt=0, description="seconds before the process group is killed")
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables")


@dataclass(frozen=True, slots=True)
class CliSpec:
    kind: str
    binary: str
    npm_package: str
    default_models: tuple[str, ...]
    description: str


CLAUDE = CliSpec(
    "cli-claude",
    "claude",
    "@anthropic-ai/claude-code",
    ("sonnet", "opus", "haiku"),
    "Claude Code CLI (claude -p)",
)
GEMINI = CliSpec(
    "cli-gemini",
    "gemini",
    "@google/gemini-cli",
    ("gemini-2.5-pro", "gemini-2.5-flash"),
    "Gemini CLI (prompt on stdin)",
)
CODEX = CliSpec(
    "cli-codex", "codex", "@openai/codex", ("gpt-5", "gpt-5-codex"), "Codex CLI (codex exec -)"
)


# ----------------------------------------------------------------------------- prompt


def render_prompt(request: Request, *, include_system: bool) -> str:
    """The conversation as one prompt. A single user turn is sent as is; longer conversations
    are labelled transcripts. System text is prepended only for CLIs without a system flag."""
    turns = [m for m in request.messages if m.text()]
    parts: list[str] = []
    if include_system and request.system:
        parts.append(f"<system_instructions>\n{request.system_text()}\n</system_instructions>")
    if len(turns) == 1 and turns[0].role is Role.USER:
        parts.append(turns[0].text())
    else:
        for message in turns:
            label = {"user": "User", "assistant": "Assistant", "tool": "Tool result"}[
                message.role.value
            ]
            parts.append(f"{label}: {message.text()}")
    return "\n\n".join(parts)


def summarise_stderr(stderr: bytes) -> str:
    text = redact(stderr.decode(errors="replace")).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    summary = " | ".join(lines[-5:])
    if len(summary) > STDERR_SUMMARY_CHARS:
        summary = "…" + summary[-STDERR_SUMMARY_CHARS:]
    return summary or "(no stderr)"


# ----------------------------------------------------------------------------- process


class CliProcess:
    """One CLI run in its own process group."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = b""
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = await self.proc.stderr.read(64 * 1024)
        # keep draining so the CLI never blocks on a full pipe
        while await self.proc.stderr.read(64 * 1024):
            pass

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def finish(self) -> int:
        code = await self.proc.wait()
        with contextlib.suppress(Exception):
            await self._stderr_task
        return code


class CliBackend:
    """A backend that runs an agent CLI per request. Subclasses say how to call it and how to
    read its output."""

    spec: CliSpec = CLAUDE
    dialect: str | None = None
    system_flag = False  # True: the system prompt goes in a flag, not into the prompt text

    def __init__(
        self, backend_id: str, options: CliOptions, env: Mapping[str, str] | None = None
    ) -> None:
        self.id = backend_id
        self.options = options
        self.prefix = options.backend_prefix or backend_id
        self.kind = self.spec.kind
        self.binary = options.command or self.spec.binary
        self.env = dict(os.environ if env is None else env)
        self.env.update(options.env)
        self.discovery_error: str | None = None

    # ------------------------------------------------------------------ per CLI

    def argv(self, request: Request, native_model: str, *, stream: bool) -> list[str]:
        raise NotImplementedError

    def parse_output(self, stdout: bytes, native_model: str) -> Response:
        text = stdout.decode(errors="replace").strip()
        if not text:
            raise GatewayError(
                ErrorKind.UPSTREAM, f"{self.binary} printed nothing", backend=self.id
            )
        return Response(
            id=f"{self.spec.binary}-{int(time.time() * 1000)}",
            model=native_model,
            content=[TextPart(text)],
            created=int(time.time()),
        )

    async def events(
        self, stdout: asyncio.StreamReader, native_model: str
    ) -> AsyncIterator[StreamEvent]:
        """Plain-text CLIs: every chunk of stdout is a text delta."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        started = False
        # Nothing is yielded before the CLI prints something, so a CLI that fails at once
        # still fails before the first byte (a clean 502, or a fallback), not mid-stream.
        while chunk := await stdout.read(4096):
            text = decoder.decode(chunk)
            if not text:
                continue
            if not started:
                started = True
                yield MessageStart(
                    id=f"{self.spec.binary}-{int(time.time() * 1000)}", model=native_model
                )
                yield TextStart(0)
            yield TextDelta(0, text)
        tail = decoder.decode(b"", final=True)
        if not started:
            if not tail.strip():
                return  # printed nothing: stream() reports it with the exit status and stderr
            yield MessageStart(
                id=f"{self.spec.binary}-{int(time.time() * 1000)}", model=native_model
            )
            yield TextStart(0)
        if tail:
            yield TextDelta(0, tail)
        yield BlockStop(0)
        yield MessageStop(StopReason.END_TURN)

    # ------------------------------------------------------------------ plumbing

    def _resolve_binary(self) -> str:
        path = shutil.which(self.binary, path=self.env.get("PATH"))
        if path is None:
            raise GatewayError(
                ErrorKind.UNAVAILABLE,
                f"the {self.spec.binary} CLI was not found on PATH for backend {self.id} — install it "
                f"with `npm install -g {self.spec.npm_package}` or set config.command to its path",
                backend=self.id,
            )
        return path

    async def _spawn(self, request: Request, native_model: str, *, stream: bool) -> CliProcess:
        argv = [self._resolve_binary(), *self.argv(request, native_model, stream=stream)]
        prompt = render_prompt(request, include_system=not self.system_flag)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=self.options.cwd,
                start_new_session=True,  # its own process group: a kill takes its children too
            )
        except OSError as exc:
            raise GatewayError(
                ErrorKind.UNAVAILABLE,
                f"cannot start {self.spec.binary}: {exc.strerror} — install it with "
                f"`npm install -g {self.spec.npm_package}`",
                backend=self.id,
            ) from None
        run = CliProcess(proc)
        assert proc.stdin is not None
        try:
            proc.stdin.write(prompt.encode())
            await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it exited early; its exit status and stderr tell why
        return run

    def _failed(self, code: int, run: CliProcess) -> GatewayError:
        return GatewayError(
            ErrorKind.UPSTREAM,
            f"{self.spec.binary} exited with status {code}: {summarise_stderr(run.stderr)}",
            backend=self.id,
        )

    def _timed_out(self) -> GatewayError:
        return GatewayError(
            ErrorKind.TIMEOUT,
            f"{self.spec.binary} did not finish within {self.options.timeout:g}s; its process group was killed",
            backend=self.id,
        )

    # ------------------------------------------------------------------ Backend protocol

    async def complete(self, request: Request, native_model: str, ctx: CallContext) -> Response:
        run = await self._spawn(request, native_model, stream=False)
        assert run.proc.stdout is not None
        try:
            async with asyncio.timeout(self.options.timeout):
                stdout = await run.proc.stdout.read()
                code = await run.finish()
        except TimeoutError:
            raise self._timed_out() from None
        finally:
            run.kill()
        if code != 0:
            raise self._failed(code, run)
        try:
            return self.parse_output(stdout, native_model)
        except GatewayError as err:
            err.message = f"{err.message} (stderr: {summarise_stderr(run.stderr)})"
            raise

    async def stream(
        self, request: Request, native_model: str, ctx: CallContext
    ) -> AsyncIterator[StreamEvent]:
        run = await self._spawn(request, native_model, stream=True)
        assert run.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.timeout
        pending: list[StreamEvent] = []
        try:
            events = aiter(self.events(run.proc.stdout, native_model))
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(events)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise self._timed_out() from None
                if isinstance(event, MessageStop):
                    pending.append(event)  # only a clean exit may end the stream cleanly
                    continue
                yield event
            try:
                async with asyncio.timeout_at(deadline):
                    code = await run.finish()
            except TimeoutError:
                raise self._timed_out() from None
            if code != 0:
                raise self._failed(code, run)
            if not pending:
                raise GatewayError(
                    ErrorKind.UPSTREAM,
                    f"{self.spec.binary} output ended without a result: {summarise_stderr(run.stderr)}",
                    backend=self.id,
                )
            for event in pending:
                yield event
        finally:
            run.kill()

    async def forward(self, body: dict[str, Any], *, stream: bool, ctx: CallContext) -> RawReply:
        raise GatewayError(
            ErrorKind.INTERNAL, "CLI backends have no byte-level fast path", backend=self.id
        )

    async def list_models(self) -> list[ModelInfo]:
        self._resolve_binary()  # report a missing CLI at start-up, not at the first request
        names = self.options.models or list(self.spec.default_models)
        return [
            ModelInfo(id=f"{self.prefix}/{n}", native_id=n, backend=self.id, owned_by=self.prefix)
            for n in names
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "prefix": self.prefix,
            "dialect": None,
            "command": self.binary,
            "discovery_error": self.discovery_error,
        }

    async def aclose(self) -> None:
        pass


# ----------------------------------------------------------------------------- the three CLIs


def _claude_usage(obj: Mapping[str, Any]) -> Usage:
    usage = obj.get("usage") or {}
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        output_tokens=int(usage.get("output_tokens") or 0),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


class ClaudeCliBackend(CliBackend):
    spec = CLAUDE
    system_flag = True

    def argv(self, request: Request, native_model: str, *, stream: bool) -> list[str]:
        argv = ["-p", "--output-format"]
        argv += ["stream-json", "--verbose", "--include-partial-messages"] if stream else ["json"]
        if native_model:
            argv += ["--model", native_model]
        if request.system:
            argv += ["--system-prompt", request.system_text()]
        return [*argv, *self.options.args]

    def _result_error(self, obj: Mapping[str, Any]) -> GatewayError:
        detail = obj.get("result") or obj.get("subtype") or "error"
        return GatewayError(
            ErrorKind.UPSTREAM,
            f"claude reported an error: {redact(str(detail))[:300]}",
            backend=self.id,
        )

    def parse_output(self, stdout: bytes, native_model: str) -> Response:
        try:
            obj = orjson.loads(stdout)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.UPSTREAM, "claude printed output that is not JSON", backend=self.id
            ) from None
        if isinstance(obj, list):  # some versions print the whole event list
            obj = next(
                (o for o in reversed(obj) if isinstance(o, dict) and o.get("type") == "result"),
                None,
            )
        if (
            not isinstance(obj, dict)
            or obj.get("type") != "result"
            or not isinstance(obj.get("result"), str)
        ):
            raise GatewayError(
                ErrorKind.UPSTREAM, "claude printed no result object", backend=self.id
            )
        if obj.get("is_error"):
            raise self._result_error(obj)
        return Response(
            id=str(obj.get("session_id") or f"claude-{int(time.time() * 1000)}"),
            model=native_model,
            content=[TextPart(obj["result"])],
            usage=_claude_usage(obj),
            created=int(time.time()),
        )

    async def events(
        self, stdout: asyncio.StreamReader, native_model: str
    ) -> AsyncIterator[StreamEvent]:
        started = opened = partial = False
        async for raw in stdout:
            line = raw.strip()
            if not line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise GatewayError(
                    ErrorKind.UPSTREAM, "claude printed a line that is not JSON", backend=self.id
                ) from None
            if not isinstance(obj, dict):
                continue
            kind = obj.get("type")
            texts: list[str] = []
            if kind == "stream_event":
                event = obj.get("event") or {}
                delta = event.get("delta") or {}
                if event.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
                    partial = True
                    texts.append(str(delta.get("text", "")))
            elif kind == "assistant" and not partial:
                message = obj.get("message") or {}
                texts += [
                    str(block["text"])
                    for block in message.get("content") or []
                    if isinstance(block, dict) and block.get("type") == "text" and block.get("text")
                ]
            elif kind == "result":
                if obj.get("is_error"):
                    raise self._result_error(obj)
                if not opened and isinstance(obj.get("result"), str) and obj["result"]:
                    texts.append(obj["result"])
            # MessageStart waits for the first text, so an early failure is still a clean 502
            if texts and not started:
                started = True
                yield MessageStart(id=str(obj.get("session_id") or "claude"), model=native_model)
            for text in texts:
                if not opened:
                    opened = True
                    yield TextStart(0)
                yield TextDelta(0, text)
            if kind == "result":
                if not started:
                    started = True
                    yield MessageStart(
                        id=str(obj.get("session_id") or "claude"), model=native_model
                    )
                if opened:
                    yield BlockStop(0)
                yield UsageEvent(_claude_usage(obj))
                yield MessageStop(StopReason.END_TURN)


class GeminiCliBackend(CliBackend):
    spec = GEMINI

    def argv(self, request: Request, native_model: str, *, stream: bool) -> list[str]:
        model = ["-m", native_model] if native_model else []
        return [*model, *self.options.args]


class CodexCliBackend(CliBackend):
    spec = CODEX

    def argv(self, request: Request, native_model: str, *, stream: bool) -> list[str]:
        model = ["-m", native_model] if native_model else []
        return ["exec", "--skip-git-repo-check", *model, *self.options.args, "-"]


def _factory(cls: type[CliBackend]) -> Any:
    def build(backend_id: str, options: CliOptions, ctx: BuildContext) -> CliBackend:
        return cls(backend_id, options, env=ctx.env)

    return build


def register_kinds(register: Any) -> None:
    for cls in (ClaudeCliBackend, GeminiCliBackend, CodexCliBackend):
        register(
            BackendKind(
                cls.spec.kind,
                _factory(cls),
                options=CliOptions,
                description=cls.spec.description,
                install_hint=f"npm install -g {cls.spec.npm_package}",
            )
        )
