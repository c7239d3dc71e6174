"""The fidelity matrix: client dialect x backend dialect x feature → lossless / lossy / unsupported.

Every cell is computed, not written by hand. A feature is a canonical sample plus an extractor
(what must survive). For a request feature the sample is rendered as the client would send it
(``C.build_request``), parsed by relaygate (``C.parse_request``), built for the backend
(``B.build_request``) and read back as that backend would (``B.parse_request``). For a response
feature the backend's answer (``B.render_response`` / its stream) is parsed, rendered for the
client and read back the way the client would. The extractor's values before and after decide
the cell. Same-dialect pairs take the byte fast path and are lossless by construction.

``scripts/gen_fidelity.py`` writes ``docs/fidelity.md``; ``test_fidelity.py`` fails when it is stale.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relaygate import dialects
from relaygate.canonical import (
    BlockStop,
    DocumentPart,
    GatewayError,
    ImagePart,
    Message,
    MessageStart,
    MessageStop,
    Request,
    Response,
    ResponseFormat,
    Role,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    ThinkingConfig,
    ThinkingDelta,
    ThinkingPart,
    ThinkingStart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
)
from relaygate.dialects.sse import SSEDecoder

DIALECTS = [dialects.OPENAI_CHAT, dialects.OPENAI_RESPONSES, dialects.ANTHROPIC, dialects.GEMINI]
FAMILY = {
    dialects.OPENAI_CHAT: "openai",
    dialects.OPENAI_RESPONSES: "openai",
    dialects.ANTHROPIC: "anthropic",
    dialects.GEMINI: "gemini",
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _user(*parts: Any) -> Message:
    return Message(Role.USER, list(parts))


def _req(**kw: Any) -> Request:
    base: dict[str, Any] = {"model": "m", "messages": [_user(TextPart("hello"))], "max_tokens": 256}
    base.update(kw)
    return Request(**base)


def _calls(msgs: list[Message]) -> list[Any]:
    out: list[Any] = []
    for m in msgs:
        for p in m.content:
            if isinstance(p, ToolCallPart):
                out.append(["call", p.name, json.loads(p.arguments or "{}")])
            elif isinstance(p, ToolResultPart):
                out.append(
                    [
                        "result",
                        "".join(c.text for c in p.content if isinstance(c, TextPart)),
                        p.is_error,
                    ]
                )
    return out


def _images(msgs: list[Message]) -> list[Any]:
    return [
        [p.media_type, p.data, p.url] for m in msgs for p in m.content if isinstance(p, ImagePart)
    ]


@dataclass(frozen=True)
class RequestFeature:
    name: str
    sample: Callable[[], Request]
    extract: Callable[[Request], Any]


@dataclass(frozen=True)
class ResponseFeature:
    name: str
    sample: Callable[[str], Response]  # argument: the backend's provider family
    extract: Callable[[Response], Any]


REQUEST_FEATURES = [
    RequestFeature(
        "text", lambda: _req(), lambda r: [(m.role.value, m.text()) for m in r.messages]
    ),
    RequestFeature(
        "system instructions",
        lambda: _req(system=[TextPart("Be brief.")]),
        lambda r: r.system_text(),
    ),
    RequestFeature(
        "system cache_control",
        lambda: _req(system=[TextPart("Long prefix.", cache_control={"type": "ephemeral"})]),
        lambda r: [p.cache_control for p in r.system],
    ),
    RequestFeature(
        "image (base64)",
        lambda: _req(
            messages=[_user(TextPart("what?"), ImagePart(media_type="image/png", data=PNG))]
        ),
        lambda r: _images(r.messages),
    ),
    RequestFeature(
        "image (URL)",
        lambda: _req(
            messages=[_user(TextPart("what?"), ImagePart(url="https://example.com/cat.png"))]
        ),
        lambda r: [i[2] for i in _images(r.messages)],
    ),
    RequestFeature(
        "tool definitions",
        lambda: _req(tools=[ToolSpec("get_weather", "Weather for a city", SCHEMA)]),
        lambda r: [(t.name, t.description, t.parameters) for t in r.tools],
    ),
    RequestFeature(
        "tool_choice (named tool)",
        lambda: _req(
            tools=[ToolSpec("get_weather", "w", SCHEMA)],
            tool_choice=ToolChoice("tool", "get_weather"),
        ),
        lambda r: r.tool_choice and (r.tool_choice.mode, r.tool_choice.name),
    ),
    RequestFeature(
        "parallel tool calls + results in history",
        lambda: _req(
            tools=[ToolSpec("get_weather", "w", SCHEMA)],
            messages=[
                _user(TextPart("Paris and Oslo?")),
                Message(
                    Role.ASSISTANT,
                    [
                        ToolCallPart("call_1", "get_weather", '{"city":"Paris"}'),
                        ToolCallPart("call_2", "get_weather", '{"city":"Oslo"}'),
                    ],
                ),
                Message(
                    Role.TOOL, [ToolResultPart("call_1", [TextPart("sunny")], name="get_weather")]
                ),
                Message(
                    Role.TOOL, [ToolResultPart("call_2", [TextPart("rain")], name="get_weather")]
                ),
            ],
        ),
        lambda r: _calls(r.messages),
    ),
    RequestFeature(
        "tool result marked as error",
        lambda: _req(
            messages=[
                _user(TextPart("go")),
                Message(Role.ASSISTANT, [ToolCallPart("call_1", "f", "{}")]),
                Message(
                    Role.TOOL,
                    [ToolResultPart("call_1", [TextPart("boom")], is_error=True, name="f")],
                ),
            ],
            tools=[ToolSpec("f", None, {"type": "object", "properties": {}})],
        ),
        lambda r: _calls(r.messages),
    ),
    RequestFeature(
        "tool_choice (subset of tools)",
        lambda: _req(
            tools=[ToolSpec(n, "w", SCHEMA) for n in ("a", "b", "c")],
            tool_choice=ToolChoice("required", names=["a", "b"]),
        ),
        lambda r: r.tool_choice and (r.tool_choice.mode, r.tool_choice.names),
    ),
    RequestFeature(
        "tool result cache_control",
        lambda: _req(
            messages=[
                _user(TextPart("go")),
                Message(Role.ASSISTANT, [ToolCallPart("call_1", "f", "{}")]),
                Message(
                    Role.TOOL,
                    [
                        ToolResultPart(
                            "call_1",
                            [TextPart("ok")],
                            name="f",
                            cache_control={"type": "ephemeral"},
                        )
                    ],
                ),
            ],
            tools=[ToolSpec("f", None, {"type": "object", "properties": {}})],
        ),
        lambda r: [
            p.cache_control for m in r.messages for p in m.content if isinstance(p, ToolResultPart)
        ],
    ),
    RequestFeature(
        "document in a tool result",
        lambda: _req(
            messages=[
                _user(TextPart("go")),
                Message(Role.ASSISTANT, [ToolCallPart("call_1", "f", "{}")]),
                Message(
                    Role.TOOL,
                    [
                        ToolResultPart(
                            "call_1",
                            [TextPart("see file"), DocumentPart("application/pdf", "JVBERi0=")],
                            name="f",
                        )
                    ],
                ),
            ],
            tools=[ToolSpec("f", None, {"type": "object", "properties": {}})],
        ),
        lambda r: [
            (q.media_type, q.data)
            for m in r.messages
            for p in m.content
            if isinstance(p, ToolResultPart)
            for q in p.content
            if isinstance(q, DocumentPart)
        ],
    ),
    RequestFeature(
        "temperature / top_p",
        lambda: _req(temperature=0.3, top_p=0.9),
        lambda r: (r.temperature, r.top_p),
    ),
    RequestFeature("max tokens", lambda: _req(max_tokens=321), lambda r: r.max_tokens),
    RequestFeature("stop sequences", lambda: _req(stop=["END"]), lambda r: r.stop),
    RequestFeature(
        "response_format json_schema",
        lambda: _req(response_format=ResponseFormat("json_schema", SCHEMA, "city")),
        lambda r: r.response_format and (r.response_format.type, r.response_format.schema),
    ),
    RequestFeature(
        "response_format json_object",
        lambda: _req(response_format=ResponseFormat("json_object")),
        lambda r: r.response_format and r.response_format.type,
    ),
    RequestFeature(
        "thinking budget",
        lambda: _req(max_tokens=8000, thinking=ThinkingConfig(budget_tokens=2048)),
        lambda r: r.thinking is not None and r.thinking.enabled,
    ),
    RequestFeature(
        "top_k",
        lambda: _req(top_k=40),
        lambda r: r.top_k,
    ),
    RequestFeature(
        "seed / penalties",
        lambda: _req(seed=7, presence_penalty=0.5, frequency_penalty=0.2),
        lambda r: (r.seed, r.presence_penalty, r.frequency_penalty),
    ),
    RequestFeature("end-user id", lambda: _req(user="user-42"), lambda r: r.user),
]


def _resp(content: list[Any], **kw: Any) -> Response:
    return Response(id="resp_1", model="m", content=content, usage=Usage(10, 5), **kw)


RESPONSE_FEATURES = [
    ResponseFeature("text answer", lambda f: _resp([TextPart("Hi!")]), lambda r: r.text()),
    ResponseFeature(
        "parallel tool calls",
        lambda f: _resp(
            [
                ToolCallPart("call_a", "get_weather", '{"city":"Paris"}'),
                ToolCallPart("call_b", "get_weather", '{"city":"Oslo"}'),
            ],
            stop_reason=StopReason.TOOL_USE,
        ),
        lambda r: (
            [("call", c.name, json.loads(c.arguments)) for c in r.tool_calls()],
            r.stop_reason.value,
        ),
    ),
    ResponseFeature(
        "stop reason: max tokens",
        lambda f: _resp([TextPart("cut")], stop_reason=StopReason.MAX_TOKENS),
        lambda r: r.stop_reason.value,
    ),
    ResponseFeature(
        "stop reason: stop sequence",
        lambda f: _resp([TextPart("x")], stop_reason=StopReason.STOP_SEQUENCE, stop_sequence="END"),
        lambda r: (r.stop_reason.value, r.stop_sequence),
    ),
    ResponseFeature(
        "usage: input/output",
        lambda f: _resp([TextPart("x")]),
        lambda r: (r.usage.input_tokens, r.usage.output_tokens),
    ),
    ResponseFeature(
        "usage: cache read/write",
        lambda f: Response(
            "r",
            "m",
            [TextPart("x")],
            usage=Usage(100, 5, cache_read_tokens=60, cache_write_tokens=20),
        ),
        lambda r: (r.usage.input_tokens, r.usage.cache_read_tokens, r.usage.cache_write_tokens),
    ),
    ResponseFeature(
        "usage: reasoning tokens",
        lambda f: Response("r", "m", [TextPart("x")], usage=Usage(10, 50, reasoning_tokens=40)),
        lambda r: (r.usage.output_tokens, r.usage.reasoning_tokens),
    ),
    ResponseFeature(
        "thinking text",
        lambda f: _resp(
            [ThinkingPart("Let me think.", signature="sig123", origin=f), TextPart("42")]
        ),
        lambda r: [p.text for p in r.content if isinstance(p, ThinkingPart) and p.text],
    ),
    ResponseFeature(
        "thinking signature (never forged)",
        lambda f: _resp(
            [ThinkingPart("Let me think.", signature="sig123", origin=f), TextPart("42")]
        ),
        lambda r: [
            (p.signature, p.origin)
            for p in r.content
            if isinstance(p, ThinkingPart) and p.signature
        ],
    ),
]


# --------------------------------------------------------------------------- running a cell


def _client_body(client: str, request: Request) -> dict[str, Any]:
    d: Any = dialects.get(client)
    body: dict[str, Any] = d.build_request(request, "m")
    return body


def _describe(before: Any, after: Any) -> str:
    def short(v: Any) -> str:
        text = json.dumps(v, default=str)
        return text if len(text) <= 60 else text[:57] + "..."

    return f"{short(before)} → {short(after)}"


def request_cell(client: str, backend: str, feature: RequestFeature) -> str:
    sample = feature.sample()
    c: Any = dialects.get(client)
    b: Any = dialects.get(backend)
    try:
        parsed = c.parse_request(_client_body(client, sample))
    except GatewayError as err:
        return f"n/a (the {client} wire has no such field: {err.message})"
    if feature.extract(parsed) != feature.extract(sample):
        return f"n/a (not expressible in {client})"
    if client == backend:
        return "lossless (pass-through)"
    try:
        upstream = b.build_request(parsed, "m")
    except GatewayError as err:
        return f"unsupported: {err.status} {err.message}"
    if backend == dialects.GEMINI:
        upstream = {**upstream, "model": "m"}
    seen = b.parse_request(upstream)
    before, after = feature.extract(parsed), feature.extract(seen)
    return "lossless" if before == after else f"lossy: {_describe(before, after)}"


def _through_stream(backend: str, client: str, response: Response) -> Response:
    """The response as canonical stream events, rendered by the backend, parsed, re-rendered
    for the client and parsed again as the client would."""
    events: list[StreamEvent] = [MessageStart(response.id, response.model)]
    for i, part in enumerate(response.content):
        if isinstance(part, TextPart):
            events += [
                TextStart(i),
                TextDelta(i, part.text[:2]),
                TextDelta(i, part.text[2:]),
                BlockStop(i),
            ]
        elif isinstance(part, ToolCallPart):
            half = len(part.arguments) // 2
            events += [
                ToolCallStart(i, part.id, part.name),
                ToolCallDelta(i, part.arguments[:half]),
                ToolCallDelta(i, part.arguments[half:]),
                BlockStop(i),
            ]
        elif isinstance(part, ThinkingPart):
            events += [
                ThinkingStart(i),
                ThinkingDelta(i, text=part.text),
                ThinkingDelta(i, signature=part.signature, origin=part.origin),
                BlockStop(i),
            ]
    events += [
        UsageEvent(response.usage),
        MessageStop(response.stop_reason, response.stop_sequence),
    ]
    for src, dst in ((backend, backend), (client, client)):
        renderer: Any = dialects.get(src).make_renderer("m")
        raw = b"".join(renderer.feed(e) for e in events)
        parser = dialects.get(dst).make_parser()
        decoder = SSEDecoder()
        events = [ev for sse in decoder.feed(raw) + decoder.flush() for ev in parser.feed(sse)]
        events += parser.finish()
    return _collect(events)


def _collect(events: list[StreamEvent]) -> Response:
    out = Response("s", "m", [])
    blocks: dict[int, Any] = {}
    order: list[int] = []
    for e in events:
        if isinstance(e, TextStart):
            blocks[e.index] = TextPart("")
            order.append(e.index)
        elif isinstance(e, TextDelta):
            blocks[e.index].text += e.text
        elif isinstance(e, ToolCallStart):
            blocks[e.index] = ToolCallPart(e.id, e.name, "")
            order.append(e.index)
        elif isinstance(e, ToolCallDelta):
            blocks[e.index].arguments += e.arguments
        elif isinstance(e, ThinkingStart):
            blocks[e.index] = ThinkingPart("")
            order.append(e.index)
        elif isinstance(e, ThinkingDelta):
            blocks[e.index].text += e.text
            if e.signature:
                blocks[e.index].signature = e.signature
                blocks[e.index].origin = e.origin
        elif isinstance(e, UsageEvent) or (isinstance(e, MessageStart) and e.usage is not None):
            out.usage.merge(e.usage)
        elif isinstance(e, MessageStop):
            out.stop_reason, out.stop_sequence = e.stop_reason, e.stop_sequence
    out.content = [blocks[i] for i in order]
    return out


def response_cell(client: str, backend: str, feature: ResponseFeature, *, stream: bool) -> str:
    family = FAMILY[backend]
    sample = feature.sample(family)
    if client == backend:
        return "lossless (pass-through)"
    b: Any = dialects.get(backend)
    c: Any = dialects.get(client)
    own = c.parse_response(json.loads(c.render_response(sample)))
    if feature.extract(own) != feature.extract(sample):
        return f"n/a (not expressible in {client})"
    try:
        if stream:
            final = _through_stream(backend, client, sample)
        else:
            upstream = b.parse_response(json.loads(b.render_response(sample)))
            final = c.parse_response(json.loads(c.render_response(upstream)))
    except GatewayError as err:
        return f"unsupported: {err.status} {err.message}"
    before, after = feature.extract(sample), feature.extract(final)
    if before == after:
        return "lossless"
    return f"lossy: {_describe(before, after)}"


def build_matrix() -> dict[str, dict[str, dict[str, str]]]:
    """``{section: {feature: {"client → backend": cell}}}``."""
    logging.disable(logging.DEBUG)
    sections: dict[str, dict[str, dict[str, str]]] = {"request": {}, "response": {}, "stream": {}}
    pairs = [(c, b) for c in DIALECTS for b in DIALECTS]
    for f in REQUEST_FEATURES:
        sections["request"][f.name] = {f"{c} → {b}": request_cell(c, b, f) for c, b in pairs}
    for f in RESPONSE_FEATURES:
        sections["response"][f.name] = {
            f"{c} → {b}": response_cell(c, b, f, stream=False) for c, b in pairs
        }
        sections["stream"][f.name] = {
            f"{c} → {b}": response_cell(c, b, f, stream=True) for c, b in pairs
        }
    logging.disable(logging.NOTSET)
    return sections


def render_markdown() -> str:
    matrix = build_matrix()
    lines = [
        "# Fidelity matrix",
        "",
        "Generated by `scripts/gen_fidelity.py` from `tests/fidelity/matrix.py` — do not edit by hand;",
        "`tests/fidelity/test_fidelity.py` fails when this file is stale.",
        "",
        "Each cell: **lossless**; **lossy** with what was lost (value the client sent → value the",
        "other side received); **unsupported** with the error the client gets; **n/a** when the",
        "client's own wire format cannot express the feature. Same-dialect pairs take the byte",
        "fast path: unknown fields and everything else survive untouched. Across dialects, fields",
        "with no counterpart are dropped and logged at debug level.",
        "",
        "Request cells follow a client request to the backend; response and stream cells follow",
        "the backend's answer (non-streamed, then as an event stream) back to the client.",
        "",
    ]
    titles = {
        "request": "Requests (client → backend)",
        "response": "Responses",
        "stream": "Streams",
    }
    for section, features in matrix.items():
        lines += [f"## {titles[section]}", ""]
        for client in DIALECTS:
            lines += [f"### client: {client}", ""]
            lines.append("| feature | " + " | ".join(f"→ {b}" for b in DIALECTS) + " |")
            lines.append("|---|" + "---|" * len(DIALECTS))
            for feature, cells in features.items():
                row = [cells[f"{client} → {b}"].replace("|", "\\|") for b in DIALECTS]
                lines.append(f"| {feature} | " + " | ".join(row) + " |")
            lines.append("")
    return "\n".join(lines)
