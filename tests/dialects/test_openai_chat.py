"""OpenAI Chat dialect: validation, errors, the stream watch, and round trips (hypothesis)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaygate.canonical import (
    BlockStop,
    ErrorKind,
    GatewayError,
    ImagePart,
    Message,
    MessageStart,
    MessageStop,
    Request,
    Response,
    Role,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
)
from relaygate.dialects import openai_chat as oc
from relaygate.dialects.sse import SSEDecoder

USER = [{"role": "user", "content": "hi"}]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": USER}, "model"),
        ({"model": "", "messages": USER}, "model"),
        ({"model": 3, "messages": USER}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "audio_x"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        ({"model": "m", "messages": USER, "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": USER, "temperature": True}, "temperature"),
        ({"model": "m", "messages": USER, "max_tokens": 1.5}, "max_tokens"),
        ({"model": "m", "messages": USER, "stop": [1]}, "stop"),
        ({"model": "m", "messages": USER, "stream": "yes"}, "stream"),
        ({"model": "m", "messages": USER, "tools": {}}, "tools"),
        ({"model": "m", "messages": USER, "tools": [{"type": "function"}]}, "tools[0].type"),
        ({"model": "m", "messages": USER, "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"model": "m", "messages": USER, "response_format": {"type": "xml"}},
            "response_format.type",
        ),
    ],
)
def test_parse_request_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        oc.parse_request(body)
    assert info.value.status == 400
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert info.value.param == param


def test_render_error_is_openai_shape() -> None:
    err = GatewayError(ErrorKind.NOT_FOUND, "no such model", param="model")
    assert orjson.loads(oc.render_error(err)) == {
        "error": {
            "message": "no such model",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


@pytest.mark.parametrize(
    ("status", "kind", "client_status"),
    [
        (400, ErrorKind.INVALID_REQUEST, 400),
        (401, ErrorKind.AUTHENTICATION, 502),
        (403, ErrorKind.PERMISSION, 502),
        (404, ErrorKind.NOT_FOUND, 404),
        (429, ErrorKind.RATE_LIMIT, 429),
        (500, ErrorKind.UPSTREAM, 502),
        (503, ErrorKind.UNAVAILABLE, 503),
        (504, ErrorKind.TIMEOUT, 504),
        (529, ErrorKind.OVERLOADED, 503),
    ],
)
def test_parse_error_statuses(status: int, kind: ErrorKind, client_status: int) -> None:
    body = orjson.dumps({"error": {"message": "boom", "type": "x", "param": "p", "code": "c"}})
    err = oc.parse_error(status, body)
    assert (err.kind, err.status, err.upstream_status) == (kind, client_status, status)
    assert (err.message, err.param, err.code) == ("boom", "p", "c")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "plain string"}', "plain string"),
        (b'{"message": "top-level message"}', "top-level message"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b"", "upstream returned HTTP 502"),
    ],
)
def test_parse_error_odd_bodies(body: bytes, message: str) -> None:
    assert oc.parse_error(502, body).message == message


def test_parse_response_without_choices_is_upstream_error() -> None:
    with pytest.raises(GatewayError) as info:
        oc.parse_response({"id": "x", "choices": []})
    assert info.value.kind is ErrorKind.UPSTREAM


# ----------------------------------------------------------------------------- stream watch


def test_watch_finds_usage_split_across_chunks_and_done() -> None:
    usage_chunk = (
        b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":5,'
        b'"prompt_tokens_details":{"cached_tokens":3}}}\n\n'
    )
    wire = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n' + usage_chunk
    wire += b"data: [DONE]\n\n"
    for cut in (1, 30, len(wire) - 60, len(wire) - 3):
        watch = oc.make_watch()
        watch.feed(wire[:cut])
        assert not watch.complete or cut > len(wire) - 14
        watch.feed(wire[cut:])
        assert watch.complete
        assert (watch.usage.input_tokens, watch.usage.output_tokens) == (11, 5)
        assert watch.usage.cache_read_tokens == 3


def test_watch_reads_usage_mid_chunk_with_crlf_and_done_without_space() -> None:
    # A whole stream in one chunk (what a fast upstream sends): the usage line sits between
    # other lines, lines end in CRLF, [DONE] has no space; a later usage line adds up.
    wire = (
        b'data: {"choices":[{"index":0,"delta":{"content":"usage"}}],"usage":null}\r\n\r\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}\r\n\r\n'
        b'data: {"choices":[{"index":0,"delta":{}}]}\r\n\r\n'
        b"data:[DONE]\r\n\r\n"
    )
    watch = oc.make_watch()
    watch.feed(wire)
    assert watch.complete
    assert (watch.usage.input_tokens, watch.usage.output_tokens) == (7, 2)


def test_watch_skips_garbled_usage_lines_and_done_inside_text() -> None:
    watch = oc.make_watch()
    watch.feed(b'data: {"choices":[],"usage":{"prompt_tokens":\n\n')  # not JSON: ignored
    watch.feed(b'data: {"choices":[{"index":0,"delta":{"content":"[DONE]"}}]}\n\n')
    assert not watch.complete  # "[DONE]" in the text is not the end
    watch.feed(b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1}}\n')
    assert watch.usage.input_tokens == 4 and not watch.complete
    watch.feed(b"\ndata: [DO")
    assert not watch.complete  # the marker is not whole yet
    watch.feed(b"NE]\n\n")
    assert watch.complete and watch.usage.output_tokens == 1


def test_watch_without_done_is_incomplete() -> None:
    watch = oc.make_watch()
    watch.feed(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n')
    assert not watch.complete


def test_watch_records_an_error_chunk_and_owes_done_until_it_comes() -> None:
    wire = (
        b'data: {"choices":[{"index":0,"delta":{"content":"say \\"error\\": x"}}]}\n\n'
        b'data: {"error":{"message":"overloaded","type":"server_error","code":"busy"}}\n\n'
    )
    for size in (1, 9, len(wire)):
        watch = oc.make_watch()
        for i in range(0, len(wire), size):
            watch.feed(wire[i : i + size])
        assert watch.error is not None and not watch.complete
        assert (watch.error.message, watch.error.code) == ("overloaded", "busy")
        assert watch.owed == b"data: [DONE]\n\n"
        watch.feed(b"data: [DONE]\n\n")
        assert watch.owed == b"" and not watch.complete  # an error stream never succeeds


def test_watch_ignores_error_inside_text() -> None:
    watch = oc.make_watch()
    watch.feed(b'data: {"choices":[{"index":0,"delta":{"content":"\\"error\\""}}]}\n\n')
    watch.feed(b'data: {"choices":[],"error_rate":"error"}\n\n')
    assert watch.error is None


def test_parser_reports_a_stream_cut_before_finish() -> None:
    parser = oc.make_parser()
    events = []
    for sse in SSEDecoder().feed(
        b'data: {"id":"a","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
    ):
        events.extend(parser.feed(sse))
    tail = parser.finish()
    assert tail and tail[-1].kind == "error"


def test_parser_reports_malformed_chunk() -> None:
    parser = oc.make_parser()
    (sse,) = SSEDecoder().feed(b"data: {not json\n\n")
    (event,) = parser.feed(sse)
    assert event.kind == "error"


# ----------------------------------------------------------------------------- round trips

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
_ident = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
_args = st.dictionaries(
    _ident, st.integers(-(2**63), 2**63 - 1) | _text | st.booleans(), max_size=3
).map(lambda d: orjson.dumps(d).decode())
_call = st.builds(
    lambda i, n, a: ToolCallPart(id="call_" + i, name=n, arguments=a), _ident, _ident, _args
)
_image = st.builds(
    lambda u, d: ImagePart(url="https://example.com/" + u + ".png", detail=d),
    _ident,
    st.none() | st.sampled_from(["low", "high", "auto"]),
)
_user = st.builds(
    lambda parts: Message(Role.USER, parts),
    st.lists(st.builds(TextPart, _text) | _image, min_size=1, max_size=3).filter(
        lambda ps: not (len(ps) == 1 and isinstance(ps[0], ImagePart)) or True
    ),
)
_assistant = st.builds(
    lambda text, calls: Message(Role.ASSISTANT, ([TextPart(text)] if text else []) + calls),
    st.none() | _text,
    st.lists(_call, max_size=3, unique_by=lambda c: c.id),
)
_tool = st.builds(
    lambda i, t: Message(
        Role.TOOL, [ToolResultPart(tool_call_id="call_" + i, content=[TextPart(t)])]
    ),
    _ident,
    _text,
)
_tools = st.lists(
    st.builds(
        lambda n, d: ToolSpec(
            name=n, description=d, parameters={"type": "object", "properties": {}}
        ),
        _ident,
        st.none() | _text,
    ),
    max_size=3,
    unique_by=lambda t: t.name,
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    tools = draw(_tools)
    choice = None
    if tools:
        choice = draw(
            st.none()
            | st.sampled_from(["auto", "none", "required"]).map(lambda m: ToolChoice(mode=m))  # type: ignore[arg-type]
            | st.sampled_from([t.name for t in tools]).map(
                lambda n: ToolChoice(mode="tool", name=n)
            )
        )
    return Request(
        model="m",
        messages=draw(st.lists(_user | _assistant | _tool, min_size=1, max_size=5)),
        system=draw(st.lists(st.builds(TextPart, _text), max_size=1)),
        tools=tools,
        tool_choice=choice,
        max_tokens=draw(st.none() | st.integers(1, 10_000)),
        temperature=draw(st.none() | st.floats(0, 2)),
        stop=draw(st.lists(_text, max_size=2)),
        seed=draw(st.none() | st.integers(0, 2**31)),
        extras=draw(
            st.dictionaries(
                st.from_regex(r"x_[a-z]{1,8}", fullmatch=True),
                st.integers(-(2**63), 2**63 - 1) | _text,
                max_size=2,
            )
        ),
        source_dialect=oc.NAME,
    )


def _normal(request: Request) -> Request:
    # An assistant turn with neither text nor calls has no content on the wire either way.
    request.messages = [m for m in request.messages if m.content]
    return request


@settings(max_examples=60, deadline=None)
@given(requests())
def test_request_round_trip(request: Request) -> None:
    body = oc.build_request(request, "m", max_tokens_field="max_tokens")
    back = oc.parse_request(orjson.loads(orjson.dumps(body)))
    expected = _normal(request)
    assert back.system_text() == expected.system_text()
    assert [(m.role, m.content) for m in back.messages if m.content] == [
        (m.role, m.content) for m in expected.messages
    ]
    assert back.tools == expected.tools
    assert back.tool_choice == expected.tool_choice
    assert (back.max_tokens, back.temperature, back.stop, back.seed) == (
        expected.max_tokens,
        expected.temperature,
        expected.stop,
        expected.seed,
    )
    assert back.extras == expected.extras


_stops = st.sampled_from(
    [StopReason.END_TURN, StopReason.MAX_TOKENS, StopReason.TOOL_USE, StopReason.CONTENT_FILTER]
)
_usage = st.builds(
    lambda i, o, c, r: Usage(
        input_tokens=i + c, output_tokens=o + r, cache_read_tokens=c, reasoning_tokens=r
    ),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**5),
    st.integers(0, 10**5),
)


@settings(max_examples=60, deadline=None)
@given(st.none() | _text, st.lists(_call, max_size=3), _stops, _usage)
def test_response_round_trip(
    text: str | None, calls: list[ToolCallPart], stop: StopReason, usage: Usage
) -> None:
    if calls and stop is StopReason.END_TURN:
        stop = StopReason.TOOL_USE  # chat has no "stop with tool calls"
    content = ([TextPart(text)] if text else []) + list(calls)
    response = Response(
        id="chatcmpl-1", model="m", content=content, stop_reason=stop, usage=usage, created=5
    )
    back = oc.parse_response(orjson.loads(oc.render_response(response)))
    assert back == response


def _events(
    text: str | None, calls: list[ToolCallPart], stop: StopReason, usage: Usage
) -> list[StreamEvent]:
    events: list[StreamEvent] = [MessageStart(id="chatcmpl-1", model="m")]
    index = 0
    if text:
        events += [TextStart(index)]
        half = len(text) // 2
        events += [TextDelta(index, part) for part in (text[:half], text[half:]) if part]
        events += [BlockStop(index)]
        index += 1
    for call in calls:
        events += [ToolCallStart(index, call.id, call.name)]
        half = len(call.arguments) // 2
        events += [
            ToolCallDelta(index, call.arguments[:half]),
            ToolCallDelta(index, call.arguments[half:]),
        ]
        events += [BlockStop(index)]
        index += 1
    events += [UsageEvent(usage), MessageStop(stop)]
    return events


@settings(max_examples=60, deadline=None)
@given(st.none() | _text, st.lists(_call, max_size=3), _stops, _usage, st.integers(1, 50))
def test_stream_round_trip(
    text: str | None, calls: list[ToolCallPart], stop: StopReason, usage: Usage, piece: int
) -> None:
    if calls and stop is StopReason.END_TURN:
        stop = StopReason.TOOL_USE
    renderer = oc.make_renderer("m")
    wire = b"".join(renderer.feed(e) for e in _events(text, calls, stop, usage))
    decoder, parser = SSEDecoder(), oc.make_parser()
    got: list[StreamEvent] = []
    for i in range(0, len(wire), piece):
        for sse in decoder.feed(wire[i : i + piece]):
            got.extend(parser.feed(sse))
    got.extend(parser.finish())
    got_text = "".join(e.text for e in got if isinstance(e, TextDelta))
    assert got_text == (text or "")
    starts = [e for e in got if isinstance(e, ToolCallStart)]
    assert [(s.id, s.name) for s in starts] == [(c.id, c.name) for c in calls]
    for s, call in zip(starts, calls, strict=True):
        args = "".join(
            e.arguments for e in got if isinstance(e, ToolCallDelta) and e.index == s.index
        )
        assert args == call.arguments
    (usage_event,) = [e for e in got if isinstance(e, UsageEvent)]
    assert usage_event.usage == usage
    assert isinstance(got[-1], MessageStop) and got[-1].stop_reason is stop
    # The watch, which only scans bytes, agrees with the parser.
    watch = oc.make_watch()
    for i in range(0, len(wire), piece):
        watch.feed(wire[i : i + piece])
    assert watch.complete and watch.usage == usage


def test_allowed_tools_round_trip_through_canonical_names() -> None:
    from relaygate.dialects import gemini
    from relaygate.dialects import openai_responses as responses

    choice = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [
                {"type": "function", "function": {"name": "a"}},
                {"type": "function", "function": {"name": "b"}},
            ],
        },
    }
    tools = [{"type": "function", "function": {"name": n, "parameters": {}}} for n in "abc"]
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools}
    request = oc.parse_request({**body, "tool_choice": choice})
    assert request.tool_choice is not None
    assert (request.tool_choice.mode, request.tool_choice.names) == ("required", ["a", "b"])
    assert oc.build_request(request, "m")["tool_choice"] == choice
    fcc = gemini.build_request(request, "gemini-2.5-flash")["toolConfig"]["functionCallingConfig"]
    assert fcc == {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}
    assert responses.build_request(request, "m")["tool_choice"] == {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}],
    }


def test_allowed_tools_without_names_is_a_clear_400() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{}]}},
    }
    with pytest.raises(GatewayError) as info:
        oc.parse_request(body)
    assert info.value.status == 400
    assert info.value.param == "tool_choice.allowed_tools.tools"
