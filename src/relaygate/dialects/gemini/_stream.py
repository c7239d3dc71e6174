"""Gemini streams (SSE or a JSON array): the client-side renderer and watch, and the upstream parser."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from relaygate.canonical import (
    BlockStop,
    ErrorEvent,
    ErrorKind,
    GatewayError,
    MessageStart,
    MessageStop,
    StreamEvent,
    TextDelta,
    TextStart,
    ThinkingDelta,
    ThinkingStart,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from relaygate.dialects._common import json_text
from relaygate.dialects.gemini._errors import _error_body, _error_from_obj
from relaygate.dialects.gemini._parts import _args_object, _Ids
from relaygate.dialects.gemini._shared import _stop, _usage, _usage_metadata
from relaygate.dialects.gemini._tables import ORIGIN, STOP_TO_FINISH
from relaygate.dialects.sse import SSEEvent

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- streaming: canonical → client


def _frame_sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\r\n\r\n"  # Gemini ends SSE events with CRLF CRLF


class GeminiStreamRenderer:
    """Canonical events → Gemini chunks, as SSE or as a streamed JSON array.

    Gemini has no start or block events: every delta is a chunk of its own; a function call is
    sent whole when its block stops (Gemini's ``args`` is an object, not a string); the last
    chunk carries ``finishReason`` and ``usageMetadata``.
    """

    __slots__ = ("_closed", "_id", "_model", "_sse", "_tools", "_usage", "_written")

    def __init__(self, model: str, sse: bool = True) -> None:
        self._model = model
        self._sse = sse
        self._id = ""
        self._tools: dict[int, tuple[str, str, list[str]]] = {}
        self._usage: Usage | None = None
        self._written = False
        self._closed = False

    def _frame(self, obj: dict[str, Any], last: bool = False) -> bytes:
        payload = orjson.dumps(obj)
        if self._sse:
            return _frame_sse(payload)
        head = b"\r\n," if self._written else b"["
        self._written = True
        return head + payload + (b"]" if last else b"")

    def _chunk(self, part: dict[str, Any]) -> bytes:
        return self._frame(
            {
                "candidates": [{"content": {"parts": [part], "role": "model"}, "index": 0}],
                "modelVersion": self._model,
                "responseId": self._id,
            }
        )

    def feed(self, event: StreamEvent) -> bytes:
        if self._closed:
            return b""
        if isinstance(event, TextDelta):
            return self._chunk({"text": event.text}) if event.text else b""
        if isinstance(event, ThinkingDelta):
            part: dict[str, Any] = {"text": event.text, "thought": True}
            if event.signature and event.origin == ORIGIN:
                part["thoughtSignature"] = event.signature
            elif not event.text:
                return b""
            return self._chunk(part)
        if isinstance(event, ToolCallStart):
            self._tools[event.index] = (event.id, event.name, [])
            return b""
        if isinstance(event, ToolCallDelta):
            tool = self._tools.get(event.index)
            if tool is not None:
                tool[2].append(event.arguments)
            return b""
        if isinstance(event, BlockStop):
            call = self._tools.pop(event.index, None)
            if call is None:
                return b""
            args = _args_object("".join(call[2]), [])
            return self._chunk({"functionCall": {"id": call[0], "name": call[1], "args": args}})
        if isinstance(event, MessageStart):
            self._id = event.id
            if event.usage is not None:  # e.g. Anthropic's input count in message_start
                self._usage = Usage()
                self._usage.merge(event.usage)
            return b""
        if isinstance(event, UsageEvent):
            if self._usage is None:
                self._usage = Usage()
            self._usage.merge(event.usage)
            return b""
        if isinstance(event, MessageStop):
            self._closed = True
            final: dict[str, Any] = {
                "candidates": [
                    {
                        "content": {"parts": [{"text": ""}], "role": "model"},
                        "finishReason": STOP_TO_FINISH[event.stop_reason],
                        "index": 0,
                    }
                ],
                "modelVersion": self._model,
                "responseId": self._id,
            }
            if self._usage is not None:
                final["usageMetadata"] = _usage_metadata(self._usage)
            return self._frame(final, last=True)
        if isinstance(event, ErrorEvent):
            return self.error(event.error)
        return b""  # TextStart / ThinkingStart: Gemini has no block-open event

    def error(self, err: GatewayError) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        return self._frame(_error_body(err), last=True)


def make_renderer(model: str, sse: bool = True) -> GeminiStreamRenderer:
    """``sse=False`` renders ``streamGenerateContent`` without ``?alt=sse``: a JSON array whose
    elements are written as they come (``[{…}\\r\\n,{…}]``)."""
    return GeminiStreamRenderer(model, sse)


# ----------------------------------------------------------------------------- streaming: upstream → canonical


class GeminiStreamParser:
    """Gemini chunks → canonical events. Each chunk is a whole ``GenerateContentResponse``;
    text and thoughts arrive as deltas, function calls whole, the last chunk has
    ``finishReason``. Only candidate 0 is followed."""

    __slots__ = ("_done", "_ids", "_index", "_meta", "_open", "_started", "_tool_seen")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._index = -1
        self._open: str | None = None  # "text" | "thinking" while such a block is open
        self._ids = _Ids()
        self._meta: Any = None  # the latest usageMetadata; Gemini repeats it on every chunk
        self._tool_seen = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self._done:
            return []
        data = event.data.strip()
        if not data or data == "[DONE]":
            return []
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
        return self.feed_chunk(obj)

    def feed_chunk(self, obj: Any) -> list[StreamEvent]:
        """One decoded chunk (for JSON-array streams, which are not SSE)."""
        if self._done:
            return []
        if not isinstance(obj, dict):
            self._done = True
            return [
                ErrorEvent(
                    GatewayError(ErrorKind.UPSTREAM, "upstream sent a malformed stream chunk")
                )
            ]
        error = obj.get("error")
        if isinstance(error, dict):
            self._done = True
            return [ErrorEvent(_error_from_obj(None, error))]
        out: list[StreamEvent] = []
        meta = obj.get("usageMetadata")
        if meta is not None:
            self._meta = meta
        if not self._started:
            self._started = True
            start_usage = None
            if meta is not None:  # Gemini reports the prompt size from the first chunk
                first = _usage(meta)
                start_usage = Usage(
                    input_tokens=first.input_tokens, cache_read_tokens=first.cache_read_tokens
                )
            out.append(
                MessageStart(
                    id=str(obj.get("responseId") or ""),
                    model=str(obj.get("modelVersion") or ""),
                    usage=start_usage,
                )
            )
        finish: Any = None
        candidates = obj.get("candidates")
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
            candidate = candidates[0]
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(parts, list):
                for part in parts:
                    if isinstance(part, dict):
                        self._part(part, out)
            finish = candidate.get("finishReason")
        feedback = obj.get("promptFeedback")
        blocked = isinstance(feedback, dict) and feedback.get("blockReason") is not None
        if finish is not None or blocked:
            self._close(out)
            if self._meta is not None:
                out.append(UsageEvent(_usage(self._meta)))
            out.append(MessageStop(_stop(finish, self._tool_seen, blocked)))
            self._done = True
        return out

    def _close(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._index))
            self._open = None

    def _open_block(self, kind: str, out: list[StreamEvent]) -> int:
        self._close(out)
        self._index += 1
        self._open = kind
        out.append(TextStart(self._index) if kind == "text" else ThinkingStart(self._index))
        return self._index

    def _part(self, part: dict[str, Any], out: list[StreamEvent]) -> None:
        sig = part.get("thoughtSignature") or part.get("thought_signature")
        text = part.get("text")
        if part.get("thought") is True:
            index = self._index if self._open == "thinking" else self._open_block("thinking", out)
            if text or sig:
                out.append(ThinkingDelta(index, text or "", sig, ORIGIN))
            return
        if sig:  # a signature on a plain part: an empty thinking block just before it
            index = self._open_block("thinking", out)
            out.append(ThinkingDelta(index, "", sig, ORIGIN))
            self._close(out)
        if isinstance(text, str):
            if text:
                index = self._index if self._open == "text" else self._open_block("text", out)
                out.append(TextDelta(index, text))
            return
        call = part.get("functionCall") or part.get("function_call")
        if isinstance(call, dict):
            self._close(out)
            self._index += 1
            raw_name = call.get("name")
            name = raw_name if isinstance(raw_name, str) else ""
            args = call.get("args")
            out.append(ToolCallStart(self._index, self._ids.call(call.get("id"), name), name))
            out.append(ToolCallDelta(self._index, json_text(args if args is not None else {})))
            out.append(BlockStop(self._index))
            self._tool_seen = True
            return
        log.debug("gemini: dropped streamed part with fields %s", sorted(part))

    def finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "stream ended before completion"))]


def make_parser() -> GeminiStreamParser:
    return GeminiStreamParser()


# ----------------------------------------------------------------------------- stream watch (fast path)


def _json_line(line: bytes) -> Any:
    line = line.strip()
    if line.startswith(b"data:"):
        line = line[5:].strip()
    line = line.lstrip(b"[,").rstrip(b"],").strip()
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _line_at(buf: bytes, pos: int) -> bytes:
    start = buf.rfind(b"\n", 0, pos) + 1
    end = buf.find(b"\n", pos)
    return buf[start : end if end >= 0 else len(buf)]


class GeminiStreamWatch:
    """Scans a raw Gemini stream (SSE, or a JSON array with one element per line) for usage and
    the terminal chunk. Every Gemini chunk carries ``usageMetadata``, so the watch only
    remembers where the latest one is and decodes it when ``usage`` is read."""

    __slots__ = ("_buf", "_pending", "_usage", "complete")

    def __init__(self) -> None:
        self._buf = b""
        self._pending: bytes | None = None
        self._usage = Usage()
        self.complete = False

    @property
    def usage(self) -> Usage:
        if self._pending is not None:
            obj = _json_line(self._pending)
            self._pending = None
            if isinstance(obj, dict) and obj.get("usageMetadata") is not None:
                self._usage = _usage(obj["usageMetadata"])
        return self._usage

    @usage.setter
    def usage(self, value: Usage) -> None:
        self._pending = None
        self._usage = value

    def feed(self, chunk: bytes) -> None:
        if self.complete:
            return
        buf = self._buf + chunk if self._buf else chunk
        end = buf.rfind(b"\n")
        self._buf = buf[end + 1 :]
        if end >= 0:
            self._scan(buf[:end])
        tail = self._buf
        # A JSON-array stream may end without a newline; a partial line never parses.
        if (
            not self.complete
            and tail.rstrip().endswith(b"]")
            and isinstance(_json_line(tail), dict)
        ):
            self._scan(tail)

    def _scan(self, done: bytes) -> None:
        at = done.rfind(b'"usageMetadata"')
        if at >= 0:
            self._pending = _line_at(done, at)
        for marker in (b'"finishReason"', b'"blockReason"'):
            at = done.find(marker)
            while at >= 0:
                obj = _json_line(_line_at(done, at))
                if isinstance(obj, dict) and _is_terminal(obj):
                    self.complete = True
                    return
                at = done.find(marker, at + 1)


def _is_terminal(obj: dict[str, Any]) -> bool:
    candidates = obj.get("candidates")
    if isinstance(candidates, list):
        for c in candidates:
            if isinstance(c, dict) and c.get("finishReason"):
                return True
    feedback = obj.get("promptFeedback")
    return isinstance(feedback, dict) and feedback.get("blockReason") is not None


def make_watch() -> GeminiStreamWatch:
    return GeminiStreamWatch()
