"""Responses streams (``response.*`` events): the client-side renderer and watch, and the upstream parser."""

from __future__ import annotations

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
from relaygate.dialects.openai_responses._errors import _error_from
from relaygate.dialects.openai_responses._response import _response_object
from relaygate.dialects.openai_responses._shared import (
    _encrypted_for,
    _item_id,
    _reasoning_item,
    _usage_from,
)
from relaygate.dialects.openai_responses._tables import (
    FAILED_CODE_FOR_KIND,
    INCOMPLETE_FROM_STOP,
    ORIGIN,
    STOP_FROM_INCOMPLETE,
)
from relaygate.dialects.sse import SSEEvent, encode

# --------------------------------------------------------------------------- client side: streams


class _Open:
    """One canonical block being rendered as an output item."""

    __slots__ = (
        "call_id",
        "chunks",
        "item_id",
        "kind",
        "name",
        "origin",
        "output_index",
        "redacted",
        "signature",
    )

    def __init__(self, kind: str, output_index: int, item_id: str) -> None:
        self.kind = kind
        self.output_index = output_index
        self.item_id = item_id
        self.call_id = ""
        self.name = ""
        self.chunks: list[str] = []
        self.origin: str | None = None
        self.signature: str | None = None
        self.redacted: str | None = None


class StreamRenderer:
    """Canonical events → the Responses SSE sequence (``response.created`` … ``response.completed``).

    Output items keep their text so ``*.done`` events and the final response carry it whole,
    as the API does; nothing else is buffered.
    """

    def __init__(self, model: str) -> None:
        self._call_ids: set[str] = set()
        self.model = model
        self.id = ""
        self.created = 0
        self.seq = 0
        self.started = False
        self.finished = False
        self.usage: Usage | None = None
        self.output: list[dict[str, Any] | None] = []
        self.blocks: dict[int, _Open] = {}

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        payload: dict[str, Any] = {"type": kind}  # type first, as the API writes it
        payload.update(fields)
        payload["sequence_number"] = self.seq
        self.seq += 1
        return encode(orjson.dumps(payload), kind)

    def _snapshot(
        self, status: str, incomplete: str | None = None, error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        done = [item for item in self.output if item is not None]
        return _response_object(
            self.id, self.model, self.created, done, status, self.usage, incomplete, error
        )

    def _start(self, event: MessageStart | None) -> bytes:
        self.started = True
        if event is not None:
            self.id = event.id or "resp_relaygate"
            self.model = self.model or event.model
            self.created = event.created
            if event.usage is not None:
                self.usage = Usage()
                self.usage.merge(event.usage)
        else:
            self.id = "resp_relaygate"
        snap = self._snapshot("in_progress")
        return self._event("response.created", {"response": snap}) + self._event(
            "response.in_progress", {"response": snap}
        )

    def feed(self, event: StreamEvent) -> bytes:
        if self.finished:
            return b""
        kind = event.kind
        out = (
            b"" if self.started or kind == "message_start" or kind == "error" else self._start(None)
        )
        if kind == "text_delta":
            assert isinstance(event, TextDelta)
            block = self.blocks.get(event.index)
            if block is None or not event.text:
                return out
            block.chunks.append(event.text)
            return out + self._event(
                "response.output_text.delta",
                {
                    "item_id": block.item_id,
                    "output_index": block.output_index,
                    "content_index": 0,
                    "delta": event.text,
                    "logprobs": [],
                },
            )
        if kind == "tool_call_delta":
            assert isinstance(event, ToolCallDelta)
            block = self.blocks.get(event.index)
            if block is None or not event.arguments:
                return out
            block.chunks.append(event.arguments)
            return out + self._event(
                "response.function_call_arguments.delta",
                {
                    "item_id": block.item_id,
                    "output_index": block.output_index,
                    "delta": event.arguments,
                },
            )
        if kind == "thinking_delta":
            assert isinstance(event, ThinkingDelta)
            return out + self._thinking_delta(event)
        if kind == "message_start":
            assert isinstance(event, MessageStart)
            return b"" if self.started else self._start(event)
        if kind == "text_start":
            assert isinstance(event, TextStart)
            block = self._open("message", "msg", event.index)
            item = {
                "id": block.item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            return (
                out
                + self._added(block, item)
                + self._event(
                    "response.content_part.added",
                    {
                        "item_id": block.item_id,
                        "output_index": block.output_index,
                        "content_index": 0,
                        "part": {
                            "type": "output_text",
                            "text": "",
                            "annotations": [],
                            "logprobs": [],
                        },
                    },
                )
            )
        if kind == "tool_call_start":
            assert isinstance(event, ToolCallStart)
            block = self._open("function_call", "fc", event.index)
            # Clients key output items by call_id; an upstream that repeats one would make
            # the SDK's accumulator reject the stream, so repeats get a suffix.
            seen = self._call_ids
            call_id = event.id
            n = 2
            while call_id in seen:
                call_id = f"{event.id}_{n}"
                n += 1
            seen.add(call_id)
            block.call_id, block.name = call_id, event.name
            item = {
                "id": block.item_id,
                "type": "function_call",
                "status": "in_progress",
                "call_id": call_id,
                "name": event.name,
                "arguments": "",
            }
            return out + self._added(block, item)
        if kind == "thinking_start":
            assert isinstance(event, ThinkingStart)
            block = self._open("reasoning", "rs", event.index, event.id)
            block.redacted = event.redacted
            return out + self._added(
                block, {"id": block.item_id, "type": "reasoning", "summary": []}
            )
        if kind == "block_stop":
            assert isinstance(event, BlockStop)
            return out + self._close(event.index)
        if kind == "usage":
            assert isinstance(event, UsageEvent)
            if self.usage is None:
                self.usage = Usage()
            self.usage.merge(event.usage)
            return out
        if kind == "message_stop":
            assert isinstance(event, MessageStop)
            for index in list(self.blocks):
                out += self._close(index)
            self.finished = True
            incomplete = INCOMPLETE_FROM_STOP.get(event.stop_reason)
            if incomplete:
                return out + self._event(
                    "response.incomplete", {"response": self._snapshot("incomplete", incomplete)}
                )
            return out + self._event(
                "response.completed", {"response": self._snapshot("completed")}
            )
        if kind == "error":
            assert isinstance(event, ErrorEvent)
            return out + self.error(event.error)
        return out

    def error(self, err: GatewayError) -> bytes:
        """``response.failed`` for a stream that broke after its first byte."""
        if self.finished:
            return b""
        out = b"" if self.started else self._start(None)
        self.finished = True
        failure = {
            "code": FAILED_CODE_FOR_KIND.get(err.kind, "server_error"),
            "message": err.message,
        }
        return out + self._event(
            "response.failed", {"response": self._snapshot("failed", error=failure)}
        )

    def _open(self, kind: str, prefix: str, index: int, item_id: str | None = None) -> _Open:
        output_index = len(self.output)
        self.output.append(None)
        block = _Open(kind, output_index, item_id or _item_id(prefix, self.id, output_index))
        self.blocks[index] = block
        return block

    def _added(self, block: _Open, item: dict[str, Any]) -> bytes:
        return self._event(
            "response.output_item.added", {"output_index": block.output_index, "item": item}
        )

    def _thinking_delta(self, event: ThinkingDelta) -> bytes:
        block = self.blocks.get(event.index)
        if block is None:
            return b""
        if event.origin is not None:
            block.origin = event.origin
        if event.signature:
            block.signature = event.signature
        if not event.text:
            return b""
        out = b""
        ids = {"item_id": block.item_id, "output_index": block.output_index, "summary_index": 0}
        if not block.chunks:
            out = self._event(
                "response.reasoning_summary_part.added",
                {**ids, "part": {"type": "summary_text", "text": ""}},
            )
        block.chunks.append(event.text)
        return out + self._event(
            "response.reasoning_summary_text.delta", {**ids, "delta": event.text}
        )

    def _close(self, index: int) -> bytes:
        block = self.blocks.pop(index, None)
        if block is None:
            return b""
        text = "".join(block.chunks)
        ids: dict[str, Any] = {"item_id": block.item_id, "output_index": block.output_index}
        out = b""
        item: dict[str, Any]
        if block.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out = self._event(
                "response.output_text.done",
                {**ids, "content_index": 0, "text": text, "logprobs": []},
            )
            out += self._event(
                "response.content_part.done", {**ids, "content_index": 0, "part": part}
            )
            item = {
                "id": block.item_id,
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        elif block.kind == "function_call":
            out = self._event("response.function_call_arguments.done", {**ids, "arguments": text})
            item = {
                "id": block.item_id,
                "type": "function_call",
                "status": "completed",
                "call_id": block.call_id,
                "name": block.name,
                "arguments": text,
            }
        else:
            if text:
                part = {"type": "summary_text", "text": text}
                out = self._event(
                    "response.reasoning_summary_text.done",
                    {**ids, "summary_index": 0, "text": text},
                )
                out += self._event(
                    "response.reasoning_summary_part.done",
                    {**ids, "summary_index": 0, "part": part},
                )
            secret = _encrypted_for(block.origin, block.signature, block.redacted)
            item = _reasoning_item(block.item_id, text, secret)
        self.output[block.output_index] = item
        return out + self._event(
            "response.output_item.done", {"output_index": block.output_index, "item": item}
        )


def make_renderer(model: str) -> StreamRenderer:
    return StreamRenderer(model)


class StreamWatch:
    """Scans a raw Responses stream for usage and its terminal event without decoding deltas."""

    __slots__ = ("_buf", "complete", "usage")

    _MARKERS = (b"response.completed", b"response.incomplete", b"response.failed", b"error")
    _TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})

    def __init__(self) -> None:
        self.usage = Usage()
        self.complete = False
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        end = chunk.rfind(b"\n")
        if end < 0:
            self._buf += chunk
            return
        self._buf += chunk[:end]
        region = bytes(self._buf)
        self._buf = bytearray(chunk[end + 1 :])
        if not any(region.find(m) >= 0 for m in self._MARKERS):
            return
        for line in region.split(b"\n"):
            if not line.startswith(b"data:") or not any(line.find(m) >= 0 for m in self._MARKERS):
                continue
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict) or data.get("type") not in self._TERMINAL:
                continue
            response = data.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                self.usage.merge(_usage_from(response["usage"]))
            self.complete = True


def make_watch() -> StreamWatch:
    return StreamWatch()


# --------------------------------------------------------------------------- upstream side: streams


class _Block:
    __slots__ = ("index", "origin_sent", "streamed")

    def __init__(self, index: int) -> None:
        self.index = index
        self.streamed = False  # a delta was relayed (so ``*.done`` must not repeat the text)
        self.origin_sent = False


class StreamParser:
    """Responses SSE events → canonical events; every delta is relayed as it arrives."""

    def __init__(self) -> None:
        self.started = False
        self.done = False
        self.next_index = 0
        self.calls = False
        self.blocks: dict[tuple[int, int], _Block] = {}  # (output_index, content_index | -1)
        self.seen_parts: set[tuple[int, int]] = set()
        self.item_outputs: dict[str, int] = {}  # item_id → output_index

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self.done or not event.data or event.data == "[DONE]":
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            self.done = True
            return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "malformed upstream stream event"))]
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.event
        out: list[StreamEvent] = []
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            block = self._text_block(data, out)
            block.streamed = True
            out.append(TextDelta(block.index, str(data.get("delta") or "")))
        elif kind == "response.function_call_arguments.delta":
            call = self.blocks.get((self._output_index(data), -1))
            if call is not None:
                call.streamed = True
                out.append(ToolCallDelta(call.index, str(data.get("delta") or "")))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self._thinking_text(data, str(data.get("delta") or ""), out)
        elif kind == "response.created":
            self._start(data.get("response") or {}, out)
        elif kind == "response.output_item.added":
            self._item_added(data, out)
        elif kind == "response.content_part.added":
            part = data.get("part") or {}
            block = self._text_block(data, out)
            text = part.get("text") or part.get("refusal") or ""
            if text:
                block.streamed = True
                out.append(TextDelta(block.index, text))
        elif kind in ("response.output_text.done", "response.refusal.done"):
            block = self._text_block(data, out)
            text = data.get("text") or data.get("refusal") or ""
            if not block.streamed and text:
                block.streamed = True
                out.append(TextDelta(block.index, text))
        elif kind == "response.content_part.done":
            key = (self._output_index(data), int(data.get("content_index") or 0))
            done = self.blocks.pop(key, None)
            if done is not None:
                out.append(BlockStop(done.index))
        elif kind == "response.function_call_arguments.done":
            call = self.blocks.get((self._output_index(data), -1))
            arguments = data.get("arguments") or ""
            if call is not None and not call.streamed and arguments:
                call.streamed = True
                out.append(ToolCallDelta(call.index, arguments))
        elif kind == "response.reasoning_summary_part.added":
            if int(data.get("summary_index") or 0) > 0:
                self._thinking_text(data, "\n\n", out)
        elif kind == "response.output_item.done":
            self._item_done(data, out)
        elif kind in ("response.completed", "response.incomplete"):
            self._completed(data, out)
        elif kind == "response.failed":
            self.done = True
            response = data.get("response") or {}
            out.append(ErrorEvent(_error_from(response.get("error"))))
        elif kind == "error":
            self.done = True
            out.append(ErrorEvent(_error_from(data.get("error", data))))
        # in_progress, queued, annotations, hosted-tool progress, keep-alives: nothing to relay
        return out

    def finish(self) -> list[StreamEvent]:
        if self.done:
            return []
        self.done = True
        return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "stream ended before completion"))]

    # ------------------------------------------------------------------ helpers

    def _start(self, response: dict[str, Any], out: list[StreamEvent]) -> None:
        if self.started:
            return
        self.started = True
        created = response.get("created_at")
        out.append(
            MessageStart(
                id=str(response.get("id") or ""),
                model=str(response.get("model") or ""),
                created=int(created) if isinstance(created, int | float) else 0,
            )
        )

    def _new(self, key: tuple[int, int]) -> _Block:
        block = _Block(self.next_index)
        self.next_index += 1
        self.blocks[key] = block
        return block

    def _output_index(self, data: dict[str, Any]) -> int:
        oi = data.get("output_index")
        if isinstance(oi, int):
            return oi
        return self.item_outputs.get(str(data.get("item_id")), -1)

    def _text_block(self, data: dict[str, Any], out: list[StreamEvent]) -> _Block:
        key = (self._output_index(data), int(data.get("content_index") or 0))
        block = self.blocks.get(key)
        if block is None:  # content_part.added, or a provider that skipped it
            self._start({}, out)
            block = self._new(key)
            self.seen_parts.add(key)
            out.append(TextStart(block.index))
        return block

    def _thinking_text(self, data: dict[str, Any], text: str, out: list[StreamEvent]) -> None:
        block = self.blocks.get((self._output_index(data), -1))
        if block is None or not text:
            return
        block.streamed = True
        block.origin_sent = True
        out.append(ThinkingDelta(block.index, text, origin=ORIGIN))

    def _item_added(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        item = data.get("item") or {}
        oi = self._output_index(data)
        if isinstance(item.get("id"), str):
            self.item_outputs[item["id"]] = oi
        kind = item.get("type")
        if kind == "function_call":
            self._start({}, out)
            self.calls = True
            block = self._new((oi, -1))
            call_id = str(item.get("call_id") or item.get("id") or "")
            out.append(ToolCallStart(block.index, call_id, str(item.get("name") or "")))
            if item.get("arguments"):
                block.streamed = True
                out.append(ToolCallDelta(block.index, item["arguments"]))
        elif kind == "reasoning":
            self._start({}, out)
            item_id = item.get("id")
            out.append(
                ThinkingStart(
                    self._new((oi, -1)).index,
                    id=item_id if isinstance(item_id, str) and item_id else None,
                )
            )

    def _item_done(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        item = data.get("item") or {}
        oi = self._output_index(data)
        kind = item.get("type")
        if kind == "message":
            # Close what content_part.done did not; relay content nobody streamed.
            for ci, part in enumerate(item.get("content") or []):
                key = (oi, ci)
                text = (
                    (part.get("text") or part.get("refusal") or "")
                    if isinstance(part, dict)
                    else ""
                )
                block = self.blocks.pop(key, None)
                if block is None:
                    if key in self.seen_parts or not text:
                        continue
                    self._start({}, out)
                    block = _Block(self.next_index)
                    self.next_index += 1
                    out.append(TextStart(block.index))
                if not block.streamed and text:
                    out.append(TextDelta(block.index, text))
                out.append(BlockStop(block.index))
            for key in [k for k in self.blocks if k[0] == oi]:
                out.append(BlockStop(self.blocks.pop(key).index))
            return
        block = self.blocks.pop((oi, -1), None)
        if block is None:
            return
        if kind == "function_call":
            if not block.streamed and item.get("arguments"):
                out.append(ToolCallDelta(block.index, item["arguments"]))
        elif kind == "reasoning":
            if not block.streamed:
                texts = [
                    s.get("text") or "" for s in item.get("summary") or [] if isinstance(s, dict)
                ]
                if any(texts):
                    block.origin_sent = True
                    out.append(ThinkingDelta(block.index, "\n\n".join(texts), origin=ORIGIN))
            secret = item.get("encrypted_content")
            if secret:
                out.append(ThinkingDelta(block.index, signature=secret, origin=ORIGIN))
            elif not block.origin_sent:
                out.append(ThinkingDelta(block.index, origin=ORIGIN))
        out.append(BlockStop(block.index))

    def _completed(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        self.done = True
        response = data.get("response") or {}
        self._start(response, out)
        for key in list(self.blocks):
            out.append(BlockStop(self.blocks.pop(key).index))
        if isinstance(response.get("usage"), dict):
            out.append(UsageEvent(_usage_from(response["usage"])))
        if not self.calls:
            self.calls = any(
                isinstance(i, dict) and i.get("type") == "function_call"
                for i in response.get("output") or []
            )
        stop = StopReason.TOOL_USE if self.calls else StopReason.END_TURN
        if response.get("status") == "incomplete" or data.get("type") == "response.incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason")
            stop = STOP_FROM_INCOMPLETE.get(str(reason), StopReason.MAX_TOKENS)
        out.append(MessageStop(stop))


def make_parser() -> StreamParser:
    return StreamParser()
