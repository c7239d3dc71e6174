"""Anthropic streams: the client-side renderer and watch, and the upstream parser."""

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
    StopReason,
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
from relaygate.dialects.anthropic._errors import _error_body, _error_from_object
from relaygate.dialects.anthropic._shared import (
    _unwrap_signature,
    _usage_from_wire,
    _usage_to_wire,
    _wrap_signature,
)
from relaygate.dialects.anthropic._tables import FAMILY, STOP_REASON_FROM_WIRE, STOP_REASON_TO_WIRE
from relaygate.dialects.sse import SSEEvent

log = logging.getLogger(__name__)


def _sse(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


_PING = b'event: ping\ndata: {"type":"ping"}\n\n'


class _Block:
    __slots__ = ("pending", "stopped", "wire")

    def __init__(self, wire: int) -> None:
        self.wire = wire
        self.pending: list[bytes] = []
        self.stopped = False


class AnthropicStreamRenderer:
    """Canonical events → Anthropic SSE.

    Anthropic blocks never interleave on the wire, while canonical ones may (an OpenAI upstream
    can stream two tool calls at once). Events of the block being written go out at once; those
    of blocks opened later wait until every earlier block has stopped. Sequential upstreams,
    the usual case, therefore pass straight through.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._started = False
        self._finished = False
        self._blocks: dict[int, _Block] = {}  # canonical index → block
        self._order: list[_Block] = []  # by wire index
        self._active = 0  # wire index currently being written
        self._usage = Usage()

    # -- helpers

    def _start(
        self, ident: str = "msg_relaygate", model: str = "", usage: Usage | None = None
    ) -> bytes:
        self._started = True
        if usage is not None:
            self._usage.merge(usage)
        wire_usage = _usage_to_wire(self._usage)
        wire_usage.pop("output_tokens_details", None)
        message: dict[str, Any] = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": self.model or model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": wire_usage,
        }
        return _sse("message_start", {"type": "message_start", "message": message}) + _PING

    def _emit(self, index: int, data: bytes) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            return b""
        if block.wire == self._active:
            return data
        block.pending.append(data)
        return b""

    def _open(self, index: int, content_block: dict[str, Any]) -> bytes:
        block = _Block(len(self._order))
        self._blocks[index] = block
        self._order.append(block)
        payload = {
            "type": "content_block_start",
            "index": block.wire,
            "content_block": content_block,
        }
        return self._emit(index, _sse("content_block_start", payload))

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            return b""
        payload = {"type": "content_block_delta", "index": block.wire, "delta": delta}
        return self._emit(index, _sse("content_block_delta", payload))

    def _stop(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is None or block.stopped:
            return b""
        block.stopped = True
        stop = _sse("content_block_stop", {"type": "content_block_stop", "index": block.wire})
        if block.wire != self._active:
            block.pending.append(stop)
            return b""
        return stop + self._advance()

    def _advance(self) -> bytes:
        """The active block stopped: flush the blocks queued behind it."""
        out = b""
        while True:
            self._active += 1
            if self._active >= len(self._order):
                return out
            block = self._order[self._active]
            out += b"".join(block.pending)
            block.pending.clear()
            if not block.stopped:
                return out

    def _close_all(self) -> bytes:
        out = b""
        for index, block in list(self._blocks.items()):  # insertion order is wire order
            if not block.stopped:
                out += self._stop(index)
        return out

    # -- the protocol

    def feed(self, event: StreamEvent) -> bytes:
        if self._finished:
            return b""
        if isinstance(event, ErrorEvent):
            return self.error(event.error)
        if isinstance(event, MessageStart):
            if self._started:
                return b""
            return self._start(event.id, event.model, event.usage)
        head = b"" if self._started else self._start()
        if isinstance(event, TextDelta):
            return head + self._delta(event.index, {"type": "text_delta", "text": event.text})
        if isinstance(event, ToolCallDelta):
            return head + self._delta(
                event.index, {"type": "input_json_delta", "partial_json": event.arguments}
            )
        if isinstance(event, ThinkingDelta):
            out = head
            if event.text:
                out += self._delta(event.index, {"type": "thinking_delta", "thinking": event.text})
            if event.signature:
                out += self._delta(
                    event.index,
                    {
                        "type": "signature_delta",
                        "signature": _wrap_signature(event.origin, event.signature),
                    },
                )
            return out
        if isinstance(event, TextStart):
            return head + self._open(event.index, {"type": "text", "text": ""})
        if isinstance(event, ToolCallStart):
            return head + self._open(
                event.index, {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
            )
        if isinstance(event, ThinkingStart):
            if event.redacted is not None:
                return head + self._open(
                    event.index, {"type": "redacted_thinking", "data": event.redacted}
                )
            return head + self._open(
                event.index, {"type": "thinking", "thinking": "", "signature": ""}
            )
        if isinstance(event, BlockStop):
            return head + self._stop(event.index)
        if isinstance(event, UsageEvent):
            self._usage.merge(event.usage)
            return head
        # MessageStop
        self._finished = True
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": STOP_REASON_TO_WIRE[event.stop_reason],
                "stop_sequence": event.stop_sequence,
            },
            "usage": _usage_to_wire(self._usage),
        }
        return (
            head
            + self._close_all()
            + _sse("message_delta", delta)
            + _sse("message_stop", {"type": "message_stop"})
        )

    def error(self, err: GatewayError) -> bytes:
        """Anthropic's terminal ``event: error`` for a stream that broke after its first byte."""
        self._finished = True
        return _sse("error", _error_body(err))


def make_renderer(model: str) -> AnthropicStreamRenderer:
    return AnthropicStreamRenderer(model)


class AnthropicStreamWatch:
    """Scans raw Anthropic SSE bytes for usage and ``message_stop`` without decoding every event.

    Only ``data:`` lines holding ``"message_start"``, ``"message_delta"``, ``"message_stop"`` or
    ``"error"`` (as JSON strings, so never inside escaped text) are parsed.
    """

    _MARKERS = (b'"message_start"', b'"message_delta"', b'"message_stop"', b'"error"')

    def __init__(self) -> None:
        self.usage = Usage()
        self.complete = False
        self.failed = False
        self._tail = b""
        self._raw: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> None:
        buf = self._tail + chunk if self._tail else chunk
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
        if cut < 0:
            self._tail = buf
            return
        self._tail = buf[cut + 1 :]
        part = buf[: cut + 1]
        if not any(m in part for m in self._MARKERS):
            return
        for line in part.splitlines():
            if line.startswith(b"data:") and any(m in line for m in self._MARKERS):
                self._line(line[5:])

    def _line(self, data: bytes) -> None:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(obj, dict):
            return
        kind = obj.get("type")
        raw: Any = None
        if kind == "message_start":
            message = obj.get("message")
            raw = message.get("usage") if isinstance(message, dict) else None
        elif kind == "message_delta":
            raw = obj.get("usage")
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.failed = True
        if isinstance(raw, dict):
            self._raw.update({k: v for k, v in raw.items() if v is not None})
            self.usage = _usage_from_wire(self._raw)


def make_watch() -> AnthropicStreamWatch:
    return AnthropicStreamWatch()


class AnthropicStreamParser:
    """Anthropic SSE events → canonical stream events (upstream side)."""

    def __init__(self) -> None:
        self._raw_usage: dict[str, Any] = {}
        self._stop_reason = StopReason.END_TURN
        self._stop_sequence: str | None = None
        self._ignored: set[int] = set()
        self._done = False

    def _usage(self, raw: object) -> Usage | None:
        if not isinstance(raw, dict):
            return None
        self._raw_usage.update({k: v for k, v in raw.items() if v is not None})
        return _usage_from_wire(self._raw_usage)

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self._done:
            return []
        try:
            obj = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            self._done = True
            return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "malformed upstream stream event"))]
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type") or event.event
        if kind == "content_block_delta":
            return self._block_delta(obj)
        if kind == "content_block_start":
            return self._block_start(obj)
        if kind == "content_block_stop":
            index = obj.get("index", 0)
            return [] if index in self._ignored else [BlockStop(index)]
        if kind == "message_start":
            message = obj.get("message") or {}
            return [
                MessageStart(
                    id=str(message.get("id", "")),
                    model=str(message.get("model", "")),
                    usage=self._usage(message.get("usage")),
                )
            ]
        if kind == "message_delta":
            delta = obj.get("delta") or {}
            reason = delta.get("stop_reason")
            if reason:
                self._stop_reason = STOP_REASON_FROM_WIRE.get(reason, StopReason.END_TURN)
            self._stop_sequence = delta.get("stop_sequence")
            usage = self._usage(obj.get("usage"))
            return [UsageEvent(usage)] if usage is not None else []
        if kind == "message_stop":
            self._done = True
            return [MessageStop(self._stop_reason, self._stop_sequence)]
        if kind == "error":
            self._done = True
            return [ErrorEvent(_error_from_object(obj, None))]
        return []  # ping and event types added later

    def _block_start(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = obj.get("index", 0)
        block = obj.get("content_block") or {}
        kind = block.get("type")
        if kind == "text":
            out: list[StreamEvent] = [TextStart(index)]
            if block.get("text"):
                out.append(TextDelta(index, block["text"]))
            return out
        if kind == "tool_use":
            out = [ToolCallStart(index, str(block.get("id", "")), str(block.get("name", "")))]
            if block.get("input"):
                out.append(ToolCallDelta(index, json_text(block["input"])))
            return out
        if kind == "thinking":
            out = [ThinkingStart(index)]
            if block.get("thinking") or block.get("signature"):
                origin, signature = _unwrap_signature(block.get("signature"))
                out.append(
                    ThinkingDelta(index, block.get("thinking") or "", signature, origin or FAMILY)
                )
            return out
        if kind == "redacted_thinking":
            return [ThinkingStart(index, redacted=_unwrap_signature(block.get("data"))[1] or "")]
        log.debug("anthropic: ignoring streamed block of type %r", kind)
        self._ignored.add(index)
        return []

    def _block_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        index = obj.get("index", 0)
        if index in self._ignored:
            return []
        delta = obj.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(index, delta.get("text", ""))]
        if kind == "input_json_delta":
            fragment = delta.get("partial_json", "")
            return [ToolCallDelta(index, fragment)] if fragment else []
        if kind == "thinking_delta":
            return [ThinkingDelta(index, text=delta.get("thinking", ""), origin=FAMILY)]
        if kind == "signature_delta":
            # Another relaygate upstream may hand us a wrapped foreign signature.
            origin, signature = _unwrap_signature(delta.get("signature"))
            return [ThinkingDelta(index, signature=signature, origin=origin or FAMILY)]
        return []  # citations_delta and friends have no canonical form

    def finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "stream ended before completion"))]


def make_parser() -> AnthropicStreamParser:
    return AnthropicStreamParser()
