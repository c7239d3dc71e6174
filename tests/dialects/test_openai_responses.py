"""openai-responses dialect: round trips (hypothesis), bad input, and the contracts around them."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relaygate.canonical as c
from relaygate.dialects import Dialect, get
from relaygate.dialects import openai_responses as d
from relaygate.dialects.sse import SSEDecoder, SSEEvent

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(max_size=20)
nonempty = st.text(min_size=1, max_size=20)
ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
b64 = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
    min_size=1,
    max_size=24,
)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), text)
schema = st.dictionaries(ident, json_scalar, max_size=3)


def test_module_satisfies_dialect_protocol() -> None:
    dialect: Dialect = get(d.NAME)
    assert dialect is d  # type: ignore[comparison-overlap]
    assert d.NAME == "openai-responses"
    assert d.CONTENT_TYPE_STREAM == "text/event-stream"


# --------------------------------------------------------------------------- requests

# Narrowing (what the Responses wire cannot carry, so a generated Request could not survive):
# * one system part at most: ``instructions`` is one string (several parts are joined);
# * no cache_control (OpenAI caches implicitly), no message names, no is_error on tool results;
# * images always carry ``detail`` (the wire requires it; None goes out as "auto");
# * inline images/documents carry a media type, URL documents none (the wire has no field);
# * tool results are never empty ([] goes out as "" and comes back as one empty text part) and
#   their ``name`` is left unset (parse fills it from the matching function_call);
# * an assistant turn is [thinking?] text* tool_call*, and turns of the same role (assistant,
#   tool) never follow each other: consecutive items of one turn are merged when parsed;
# * thinking sent upstream is OpenAI's own with encrypted content (the rest is dropped);
# * no top_k / stop / seed / n / penalties, max_tokens >= 16, tool_choice only with tools,
#   tools always have a parameters schema, strict is set (None means false across dialects).

images = st.one_of(
    st.builds(
        c.ImagePart,
        media_type=st.sampled_from(["image/png", "image/jpeg"]),
        data=b64,
        detail=st.sampled_from(["auto", "low", "high"]),
    ),
    st.builds(
        c.ImagePart,
        url=nonempty.map(lambda s: "https://x/" + s),
        detail=st.sampled_from(["auto", "low", "high"]),
    ),
)
documents = st.one_of(
    st.builds(
        c.DocumentPart,
        media_type=st.just("application/pdf"),
        data=b64,
        filename=st.none() | nonempty,
    ),
    st.builds(
        c.DocumentPart, url=nonempty.map(lambda s: "https://x/" + s), filename=st.none() | nonempty
    ),
)
user_parts = st.lists(
    st.one_of(st.builds(c.TextPart, text), images, documents), min_size=1, max_size=4
)
tool_calls = st.builds(c.ToolCallPart, ident.map(lambda s: "call_" + s), ident, text)
openai_thinking = st.builds(
    c.ThinkingPart,
    text=text,
    redacted=b64,
    origin=st.just("openai"),
    id=st.none() | ident.map(lambda s: "rs_" + s),
)


@st.composite
def assistant_messages(draw: st.DrawFn) -> c.Message:
    parts: list[c.ContentPart] = []
    if draw(st.booleans()):
        parts.append(draw(openai_thinking))
    parts += draw(st.lists(st.builds(c.TextPart, text), max_size=2))
    parts += draw(st.lists(tool_calls, max_size=3))
    if not parts:
        parts.append(c.TextPart(draw(text)))
    return c.Message(c.Role.ASSISTANT, parts)


tool_result_content = st.one_of(
    st.builds(lambda t: [c.TextPart(t)], text),
    st.lists(st.one_of(st.builds(c.TextPart, text), images), min_size=2, max_size=3),
)
tool_messages = st.builds(
    lambda results: c.Message(c.Role.TOOL, results),
    st.lists(
        st.builds(c.ToolResultPart, ident.map(lambda s: "res_" + s), tool_result_content),
        min_size=1,
        max_size=3,
    ),
)
user_messages = st.builds(lambda parts: c.Message(c.Role.USER, parts), user_parts)


@st.composite
def conversations(draw: st.DrawFn) -> list[c.Message]:
    out: list[c.Message] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["user", "assistant", "tool"]))
        if out and kind != "user" and out[-1].role.value == kind:
            continue
        out.append(
            draw(
                {"user": user_messages, "assistant": assistant_messages(), "tool": tool_messages}[
                    kind
                ]
            )
        )
    return out


tool_specs = st.builds(
    c.ToolSpec, name=ident, description=st.none() | text, parameters=schema, strict=st.booleans()
)
formats = st.one_of(
    st.builds(c.ResponseFormat, type=st.sampled_from(["text", "json_object"])),
    st.builds(
        c.ResponseFormat,
        type=st.just("json_schema"),
        schema=schema,
        name=ident,
        strict=st.none() | st.booleans(),
    ),
)
floats = st.none() | st.floats(0, 2, allow_nan=False)


@st.composite
def requests(draw: st.DrawFn, source: str | None = None) -> c.Request:
    tools = draw(st.lists(tool_specs, max_size=3))
    choice = None
    if tools and draw(st.booleans()):
        mode = draw(st.sampled_from(["auto", "none", "required", "tool"]))
        choice = c.ToolChoice(
            mode=mode,
            name=tools[0].name if mode == "tool" else None,
            parallel=draw(st.none() | st.booleans()),
        )
    return c.Request(
        model="gpt-x",
        messages=draw(conversations()),
        system=draw(st.lists(st.builds(c.TextPart, nonempty), max_size=1)),
        tools=tools,
        tool_choice=choice,
        max_tokens=draw(st.none() | st.integers(16, 100_000)),
        temperature=draw(floats),
        top_p=draw(floats),
        stream=draw(st.booleans()),
        response_format=draw(st.none() | formats),
        thinking=draw(
            st.none()
            | st.builds(c.ThinkingConfig, effort=st.sampled_from(["low", "medium", "high"]))
        ),
        user=draw(st.none() | text),
        metadata=draw(st.dictionaries(ident, text, max_size=2)),
        source_dialect=source,
    )


@SETTINGS
@given(requests())
def test_request_survives_build_then_parse(req: c.Request) -> None:
    body = d.build_request(req, "gpt-x")
    json.dumps(body)  # plain JSON all the way down
    back = d.parse_request(body)
    assert back.source_dialect == d.NAME
    # A request from another dialect gains only what the Responses upstream needs to return
    # reasoning statelessly (include / store / reasoning.summary), all of it in extras.
    assert set(back.extras) <= {"include", "store", "reasoning"}
    back.extras = {}
    back.source_dialect = None
    assert back == req


@SETTINGS
@given(requests(source=d.NAME))
def test_same_dialect_request_survives_build_then_parse(req: c.Request) -> None:
    assert d.parse_request(d.build_request(req, "gpt-x")) == req


@SETTINGS
@given(st.sampled_from(["tools", "tool_results", "images", "system", "foreign_thinking"]))
def test_client_bodies_are_stable_through_parse_build_parse(case: str) -> None:
    from pathlib import Path

    path = (
        Path(__file__).parent.parent
        / "golden"
        / "openai_responses"
        / "parse_request"
        / f"{case}.json"
    )
    first = d.parse_request(json.loads(path.read_text()))
    second = d.parse_request(d.build_request(first, first.model))
    # Foreign thinking is never sent to OpenAI; everything else comes back unchanged.
    for m in first.messages:
        m.content = [
            p for p in m.content if not (isinstance(p, c.ThinkingPart) and p.origin != "openai")
        ]
    first.system = [c.TextPart("\n\n".join(p.text for p in first.system))] if first.system else []
    assert second == first


# --------------------------------------------------------------------------- responses

# Narrowing: OpenAI reasoning keeps its id and carries encrypted content as ``redacted`` (a
# streamed ``signature`` renders the same bytes but parses back as ``redacted``); other
# families' thinking travels in a relaygate envelope, so it needs a signature or redacted data
# and loses its id; stop_sequence has no counterpart (STOP_SEQUENCE renders as completed).

foreign_thinking = st.builds(
    c.ThinkingPart,
    text=text,
    origin=st.sampled_from(["anthropic", "gemini"]),
    signature=st.none() | b64,
    redacted=st.none() | b64,
).filter(lambda p: bool(p.signature or p.redacted))
response_parts = st.lists(
    st.one_of(
        st.builds(c.TextPart, text),
        tool_calls,
        st.builds(
            c.ThinkingPart,
            text=text,
            redacted=st.none() | b64,
            origin=st.just("openai"),
            id=ident.map(lambda s: "rs_" + s),
        ),
        foreign_thinking,
    ),
    max_size=6,
)
usages = st.builds(c.Usage, *(st.integers(0, 10**6) for _ in range(5)))


@st.composite
def responses(draw: st.DrawFn) -> c.Response:
    content = draw(response_parts)
    calls = any(isinstance(p, c.ToolCallPart) for p in content)
    stop = draw(
        st.sampled_from(
            [
                c.StopReason.TOOL_USE if calls else c.StopReason.END_TURN,
                c.StopReason.MAX_TOKENS,
                c.StopReason.CONTENT_FILTER,
            ]
        )
    )
    return c.Response(
        id="resp_" + draw(ident),
        model=draw(nonempty),
        content=content,
        stop_reason=stop,
        usage=draw(usages),
        created=draw(st.integers(0, 2**31)),
    )


@SETTINGS
@given(responses())
def test_response_survives_render_then_parse(response: c.Response) -> None:
    from openai.types.responses import Response as SDKResponse

    raw = d.render_response(response)
    SDKResponse.model_validate_json(raw)
    assert d.parse_response(orjson.loads(raw)) == response


def test_response_items_feed_the_next_turn() -> None:
    response = c.Response(
        id="resp_1",
        model="gpt-5",
        content=[
            c.ThinkingPart(text="t", redacted="enc", origin="openai", id="rs_1"),
            c.TextPart("calling"),
            c.ToolCallPart("call_1", "f", "{}"),
        ],
        stop_reason=c.StopReason.TOOL_USE,
    )
    items = d.response_items(response)
    assert [i["type"] for i in items] == ["reasoning", "message", "function_call"]
    req = d.parse_request(
        {
            "model": "gpt-5",
            "input": [
                {"role": "user", "content": "go"},
                *items,
                {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
            ],
        }
    )
    assert req.messages[1] == c.Message(c.Role.ASSISTANT, response.content)
    assert req.messages[2].content == [c.ToolResultPart("call_1", [c.TextPart("ok")], name="f")]


# --------------------------------------------------------------------------- streams


@st.composite
def streams(draw: st.DrawFn) -> list[c.StreamEvent]:
    events: list[c.StreamEvent] = [
        c.MessageStart(id="resp_" + draw(ident), model="gpt-x", created=draw(st.integers(0, 2**31)))
    ]
    calls = False
    pending_calls: list[tuple[int, list[str]]] = []

    def flush_calls() -> None:
        # a run of tool calls streams interleaved, as parallel calls from a Chat upstream do
        longest = max((len(f) for _, f in pending_calls), default=0)
        for step in range(longest):
            for i, fragments in pending_calls:
                if step < len(fragments):
                    events.append(c.ToolCallDelta(i, fragments[step]))
        events.extend(c.BlockStop(i) for i, _ in pending_calls)
        pending_calls.clear()

    for index in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["text", "thinking", "tool"]))
        if kind != "tool":
            flush_calls()
        if kind == "text":
            events.append(c.TextStart(index))
            events += [c.TextDelta(index, t) for t in draw(st.lists(nonempty, max_size=3))]
            events.append(c.BlockStop(index))
        elif kind == "thinking":
            # narrowed: OpenAI reasoning only (origin on every delta, at least one summary delta)
            events.append(c.ThinkingStart(index))
            events += [
                c.ThinkingDelta(index, t, origin="openai")
                for t in draw(st.lists(nonempty, min_size=1, max_size=3))
            ]
            if draw(st.booleans()):
                events.append(c.ThinkingDelta(index, signature=draw(b64), origin="openai"))
            events.append(c.BlockStop(index))
        else:
            calls = True
            events.append(
                c.ToolCallStart(index, f"call_{index}_" + draw(ident), draw(ident))
            )  # ids are unique per response
            pending_calls.append((index, draw(st.lists(nonempty, max_size=3))))
    flush_calls()
    if draw(st.booleans()):
        kind = draw(
            st.sampled_from(
                [c.ErrorKind.RATE_LIMIT, c.ErrorKind.INVALID_REQUEST, c.ErrorKind.UPSTREAM]
            )
        )
        events.append(c.ErrorEvent(c.GatewayError(kind, draw(nonempty))))
        return events
    if draw(st.booleans()):
        events.append(c.UsageEvent(draw(usages)))
    stop = draw(
        st.sampled_from(
            [
                c.StopReason.TOOL_USE if calls else c.StopReason.END_TURN,
                c.StopReason.MAX_TOKENS,
                c.StopReason.CONTENT_FILTER,
            ]
        )
    )
    events.append(c.MessageStop(stop))
    return events


def _comparable(events: list[c.StreamEvent]) -> list[Any]:
    return [
        ("error", e.error.kind, e.error.message) if isinstance(e, c.ErrorEvent) else e
        for e in events
    ]


def _relay(events: list[c.StreamEvent], model: str = "gpt-x") -> tuple[bytes, list[c.StreamEvent]]:
    renderer = d.make_renderer(model)
    raw = b"".join(renderer.feed(e) for e in events)
    decoder = SSEDecoder()
    parser = d.make_parser()
    back: list[c.StreamEvent] = []
    for i in range(0, len(raw), 53):
        for sse in decoder.feed(raw[i : i + 53]):
            back += parser.feed(sse)
    back += parser.finish()
    return raw, back


@SETTINGS
@given(streams())
def test_stream_survives_render_then_parse(events: list[c.StreamEvent]) -> None:
    raw, back = _relay(events)
    # A reasoning item always has an id on the wire: the renderer makes one up where the
    # canonical stream had none, and the parser reports it.
    for sent, got in zip(events, back, strict=False):
        if isinstance(sent, c.ThinkingStart) and isinstance(got, c.ThinkingStart):
            assert got.id is not None and (sent.id is None or got.id == sent.id)
            got.id = sent.id
    assert _comparable(back) == _comparable(events)
    # the raw-byte watch agrees with the parser
    watch = d.make_watch()
    for i in range(0, len(raw), 29):
        watch.feed(raw[i : i + 29])
    assert watch.complete
    usage = [e.usage for e in events if isinstance(e, c.UsageEvent)]
    assert watch.usage == (usage[0] if usage else c.Usage())


@settings(max_examples=40, deadline=None)
@given(streams())
def test_sdk_accumulates_rendered_streams(events: list[c.StreamEvent]) -> None:
    raw, _ = _relay(events)
    final = sdk_accepts_stream(raw)
    if (
        isinstance(events[-1], c.MessageStop)
        and events[-1].stop_reason is not c.StopReason.MAX_TOKENS
        and events[-1].stop_reason is not c.StopReason.CONTENT_FILTER
    ):
        assert final is not None
        texts = "".join(e.text for e in events if isinstance(e, c.TextDelta))
        assert final.output_text == texts


def sdk_accepts_stream(raw: bytes) -> Any:
    """Validate every event with the openai SDK's types and run its ``responses.stream()``
    accumulator; the final response, or None when the stream did not complete."""
    from openai._types import omit
    from openai.lib.streaming.responses._responses import ResponseStreamState
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for sse in SSEDecoder().feed(raw):
        state.handle_event(adapter.validate_json(sse.data))
    return state._completed_response


def test_tool_arguments_are_relayed_incrementally() -> None:
    """The LiteLLM ``input: {}`` bug: every fragment must come out as it goes in."""
    fragments = ['{"pa', 'th": "/tm', 'p/x"', "}"]
    events: list[c.StreamEvent] = [
        c.MessageStart("resp_1", "gpt-x"),
        c.ToolCallStart(0, "call_1", "Read"),
    ]
    events += [c.ToolCallDelta(0, f) for f in fragments]
    events += [c.BlockStop(0), c.MessageStop(c.StopReason.TOOL_USE)]
    renderer = d.make_renderer("gpt-x")
    parser = d.make_parser()
    seen: list[str] = []
    for event in events:
        for sse in SSEDecoder().feed(renderer.feed(event)):
            for out in parser.feed(sse):
                if isinstance(out, c.ToolCallDelta):
                    seen.append(out.arguments)
        if isinstance(event, c.ToolCallDelta):
            assert seen[-1] == event.arguments  # out before the next fragment goes in
    assert seen == fragments


def test_renderer_after_stop_and_double_error_are_silent() -> None:
    renderer = d.make_renderer("gpt-x")
    renderer.feed(c.MessageStart("resp_1", "gpt-x"))
    assert renderer.feed(c.MessageStop(c.StopReason.END_TURN))
    assert renderer.feed(c.TextStart(0)) == b""
    assert renderer.error(c.GatewayError(c.ErrorKind.UPSTREAM, "late")) == b""


def test_parser_flags_malformed_and_truncated_streams() -> None:
    parser = d.make_parser()
    (event,) = parser.feed(SSEEvent("response.created", "{not json"))
    assert isinstance(event, c.ErrorEvent) and event.error.kind is c.ErrorKind.UPSTREAM
    assert parser.finish() == []
    parser = d.make_parser()
    parser.feed(SSEEvent(None, '{"type":"response.created","response":{"id":"r","model":"m"}}'))
    (event,) = parser.finish()
    assert isinstance(event, c.ErrorEvent)
    assert event.error.message == "stream ended before completion"


def test_watch_ignores_text_that_mentions_terminal_events() -> None:
    watch = d.make_watch()
    delta = {
        "type": "response.output_text.delta",
        "delta": "response.completed error",
        "item_id": "m",
        "output_index": 0,
        "content_index": 0,
    }
    watch.feed(b"event: response.output_text.delta\ndata: " + orjson.dumps(delta) + b"\n\n")
    assert not watch.complete


# --------------------------------------------------------------------------- upstream specifics


def test_build_logs_dropped_fields(caplog: pytest.LogCaptureFixture) -> None:
    req = c.Request(
        model="m",
        messages=[c.Message(c.Role.USER, [c.TextPart("hi")])],
        top_k=3,
        stop=["x"],
        seed=1,
        source_dialect="anthropic",
        extras={"anthropic-beta": "x"},
    )
    with caplog.at_level(logging.DEBUG, logger=d.__name__):
        body = d.build_request(req, "gpt-5")
    assert not {"top_k", "stop", "seed", "anthropic-beta"} & set(body)
    message = caplog.records[-1].getMessage()
    for name in ("top_k", "stop", "seed", "extras.anthropic-beta"):
        assert name in message


def test_build_clamps_tiny_max_tokens_and_never_sends_foreign_thinking() -> None:
    req = c.Request(
        model="m",
        max_tokens=1,
        messages=[
            c.Message(c.Role.USER, [c.TextPart("hi")]),
            c.Message(
                c.Role.ASSISTANT,
                [
                    c.ThinkingPart("claude", signature="sig", origin="anthropic"),
                    c.ThinkingPart("openai, id only", origin="openai", id="rs_1"),
                    c.TextPart("ok"),
                ],
            ),
        ],
    )
    body = d.build_request(req, "gpt-5")
    assert body["max_output_tokens"] == 16
    assert [i["type"] for i in body["input"]] == ["message", "message"]
    assert "sig" not in json.dumps(body)


def test_parse_response_raises_upstream_errors() -> None:
    with pytest.raises(c.GatewayError) as info:
        d.parse_response({"error": {"message": "boom", "type": "server_error", "code": None}})
    assert info.value.kind is c.ErrorKind.UPSTREAM and info.value.message == "boom"
    with pytest.raises(c.GatewayError) as info:
        d.parse_response(
            {
                "id": "r",
                "status": "failed",
                "output": [],
                "error": {"code": "rate_limit_exceeded", "message": "slow"},
            }
        )
    assert info.value.kind is c.ErrorKind.RATE_LIMIT
    with pytest.raises(c.GatewayError):
        d.parse_response({"id": "r", "status": "completed"})


def test_parse_error_keeps_status_contract() -> None:
    err = d.parse_error(
        429, b'{"error":{"message":"slow","type":"requests","code":"rate_limit_exceeded"}}'
    )
    assert (err.kind, err.status, err.upstream_status, err.code) == (
        c.ErrorKind.RATE_LIMIT,
        429,
        429,
        "rate_limit_exceeded",
    )
    err = d.parse_error(401, b'{"error":{"message":"Incorrect API key provided: sk-abc123456789"}}')
    assert err.status == 502 and "abc123456789" not in err.message


# --------------------------------------------------------------------------- bad input

BAD_BODIES: list[tuple[Any, str | None]] = [
    ([], None),
    ({}, "model"),
    ({"model": 5, "input": "x"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "m", "input": [5]}, "input[0]"),
    ({"model": "m", "input": [{"foo": 1}]}, "input[0].type"),
    ({"model": "m", "input": [{"type": "message", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"role": "user"}]}, "input[0].content"),
    ({"model": "m", "input": [{"role": "user", "content": 3}]}, "input[0].content"),
    (
        {"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
        "input[0].content[0].text",
    ),
    (
        {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
        "input[0].content[0].image_url",
    ),
    ({"model": "m", "input": [{"role": "user", "content": ["hi"]}]}, "input[0].content[0]"),
    (
        {"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
        "input[0].call_id",
    ),
    (
        {
            "model": "m",
            "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}],
        },
        "input[0].arguments",
    ),
    (
        {"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]},
        "input[0].output",
    ),
    ({"model": "m", "input": [{"type": "reasoning", "summary": "x"}]}, "input[0].summary"),
    ({"model": "m", "input": "x", "instructions": 3}, "instructions"),
    ({"model": "m", "input": "x", "tools": {}}, "tools"),
    ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools[0].type"),
    (
        {
            "model": "m",
            "input": "x",
            "tools": [{"type": "function", "name": "f", "parameters": "{}"}],
        },
        "tools[0].parameters",
    ),
    ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "m", "input": "x", "tool_choice": {"type": "function"}}, "tool_choice.name"),
    ({"model": "m", "input": "x", "tool_choice": 1}, "tool_choice"),
    ({"model": "m", "input": "x", "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"model": "m", "input": "x", "max_output_tokens": "10"}, "max_output_tokens"),
    ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "input": "x", "max_output_tokens": True}, "max_output_tokens"),
    ({"model": "m", "input": "x", "temperature": "hot"}, "temperature"),
    ({"model": "m", "input": "x", "top_p": True}, "top_p"),
    ({"model": "m", "input": "x", "stream": "true"}, "stream"),
    ({"model": "m", "input": "x", "metadata": []}, "metadata"),
    ({"model": "m", "input": "x", "user": 1}, "user"),
    ({"model": "m", "input": "x", "reasoning": "high"}, "reasoning"),
    ({"model": "m", "input": "x", "reasoning": {"effort": 2}}, "reasoning.effort"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    (
        {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}},
        "text.format.name",
    ),
    (
        {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}},
        "text.format.schema",
    ),
]


@pytest.mark.parametrize(("body", "param"), BAD_BODIES, ids=[str(p) for _, p in BAD_BODIES])
def test_bad_input_names_the_field(body: Any, param: str | None) -> None:
    with pytest.raises(c.GatewayError) as info:
        d.parse_request(body)
    err = info.value
    assert err.kind is c.ErrorKind.INVALID_REQUEST and err.status == 400
    assert err.param == param
    rendered = json.loads(d.render_error(err))
    assert set(rendered) == {"error"}
    assert set(rendered["error"]) == {"message", "type", "param", "code"}
    assert rendered["error"]["type"] == "invalid_request_error"
    assert rendered["error"]["param"] == param


def test_unknown_fields_and_hosted_tools_do_not_fail() -> None:
    req = d.parse_request(
        {
            "model": "m",
            "input": "x",
            "service_tier": "flex",
            "tools": [
                {"type": "web_search_preview"},
                {"type": "file_search", "vector_store_ids": ["v"]},
            ],
            "tool_choice": {"type": "web_search_preview"},
        }
    )
    assert req.extras["service_tier"] == "flex"
    assert req.tools == []
    other = dataclasses.replace(req, source_dialect="anthropic")
    assert "tools" not in d.build_request(other, "m")  # dropped across dialects
    assert d.build_request(req, "m")["tools"] == [
        {"type": "web_search_preview"},
        {"type": "file_search", "vector_store_ids": ["v"]},
    ]


def test_reasoning_item_id_survives_a_stream_relay() -> None:
    events: list[c.StreamEvent] = [
        c.MessageStart(id="resp_1", model="gpt-x"),
        c.ThinkingStart(0, id="rs_upstream_7"),
        c.ThinkingDelta(0, "why", origin="openai"),
        c.ThinkingDelta(0, signature="enc", origin="openai"),
        c.BlockStop(0),
        c.MessageStop(c.StopReason.END_TURN),
    ]
    raw, back = _relay(events)
    assert b'"id":"rs_upstream_7"' in raw
    starts = [e for e in back if isinstance(e, c.ThinkingStart)]
    assert [s.id for s in starts] == ["rs_upstream_7"]
