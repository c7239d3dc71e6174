"""Property tests: canonical values survive a trip through the Gemini wire format.

Strategies are narrowed to what Gemini can represent; each narrowing says why. The fidelity
matrix in the final report lists the same losses.
"""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

import orjson
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate.canonical import (
    BlockStop,
    ContentPart,
    DocumentPart,
    ErrorEvent,
    ErrorKind,
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
    upstream_kind_for_status,
)
from relaygate.dialects import gemini
from relaygate.dialects.sse import SSEDecoder

T = TypeVar("T")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# orjson refuses lone surrogates, and so does any JSON peer: keep them out of generated text.
text = st.text(st.characters(codec="utf-8"), max_size=20)
nonempty = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
ident = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
# Gemini signatures are base64 (google-genai decodes them to bytes).
signature = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode())
b64 = st.binary(min_size=1, max_size=16).map(lambda b: base64.b64encode(b).decode())
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(name, inner, max_size=3),
    max_leaves=6,
)
json_object = st.dictionaries(name, json_value, max_size=4)
# Arguments are compact JSON *objects*: Gemini's args is an object, so other JSON (or invalid
# text) cannot survive; orjson's compact form is what parsing produces.
arguments = json_object.map(lambda d: orjson.dumps(d).decode())
finite = st.floats(-2, 2, allow_nan=False, allow_infinity=False)

# Media: Gemini tells images from documents by MIME type only, and has no ``detail``/``filename``.
image = st.one_of(
    st.builds(ImagePart, media_type=st.sampled_from(["image/png", "image/jpeg"]), data=b64),
    st.builds(
        ImagePart,
        media_type=st.sampled_from(["image/png", "image/webp"]),
        url=ident.map(lambda s: f"https://example.com/{s}.img"),
    ),
)
document = st.one_of(
    st.builds(DocumentPart, media_type=st.just("application/pdf"), data=b64),
    st.builds(
        DocumentPart,
        media_type=st.just("text/plain"),
        url=ident.map(lambda s: f"https://example.com/{s}"),
    ),
)
# Empty text parts are skipped when parsing (Gemini pads streams with them).
text_part = st.builds(TextPart, text=nonempty)
tool_call = st.builds(ToolCallPart, id=ident, name=name, arguments=arguments)
thinking = st.one_of(
    st.builds(
        ThinkingPart, text=nonempty, signature=st.none() | signature, origin=st.just("gemini")
    ),
    # a bare signature: it rides on the next part, or alone when nothing follows
    st.builds(ThinkingPart, text=st.just(""), signature=signature, origin=st.just("gemini")),
)
tool_result = st.builds(
    ToolResultPart,
    tool_call_id=ident,
    # one text (the {"result"|"error": text} object) then images (functionResponse.parts)
    content=st.tuples(
        st.builds(TextPart, text=text),
        st.lists(image.filter(lambda i: i.data is not None), max_size=1),
    ).map(lambda t: [t[0], *t[1]]),
    is_error=st.booleans(),
    name=name,  # the name Gemini needs; looking it up is tested in the goldens
)


@st.composite
def messages(draw: st.DrawFn) -> list[Message]:
    out: list[Message] = []
    for _ in range(draw(st.integers(1, 5))):
        role = draw(st.sampled_from([Role.USER, Role.ASSISTANT, Role.TOOL]))
        if role is Role.TOOL and out and out[-1].role is Role.TOOL:
            role = Role.USER  # consecutive tool turns merge into one Gemini turn
        if role is Role.USER:
            parts: list[ContentPart] = draw(
                st.lists(text_part | image | document, min_size=1, max_size=3)
            )
        elif role is Role.ASSISTANT:
            parts = draw(st.lists(text_part | tool_call | thinking, min_size=1, max_size=4))
        else:
            parts = list(draw(st.lists(tool_result, min_size=1, max_size=2)))
        out.append(Message(role, parts))
    return out


# Gemini always says whether thoughts are shown, so enabled configs carry a bool.
shown = st.booleans()
thinking_config = st.one_of(
    st.just(ThinkingConfig(enabled=False)),
    # Gemini takes a level *or* a budget, never both: the level wins on Gemini 3.
    st.builds(
        ThinkingConfig,
        budget_tokens=st.none() | st.integers(1, 32768),
        include_thoughts=shown,
    ),
    st.builds(
        ThinkingConfig,
        effort=st.sampled_from(["minimal", "low", "medium", "high"]),
        include_thoughts=shown,
    ),
    st.builds(ThinkingConfig, adaptive=st.just(True), include_thoughts=shown),
)
tool_names = st.lists(name, min_size=2, max_size=3, unique=True)
tool_choice = st.one_of(
    st.builds(ToolChoice, mode=st.sampled_from(["auto", "none", "required"])),
    st.builds(ToolChoice, mode=st.just("tool"), name=name),
    st.builds(ToolChoice, mode=st.sampled_from(["auto", "required"]), names=tool_names),
)
response_format = st.one_of(
    st.just(ResponseFormat("text")),
    st.just(ResponseFormat("json_object")),
    st.builds(ResponseFormat, type=st.just("json_schema"), schema=json_object),
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    def maybe(strategy: st.SearchStrategy[T]) -> T | None:
        return draw(st.none() | strategy)

    return Request(
        model="",  # Gemini carries the model in the URL
        messages=draw(messages()),
        system=draw(st.lists(st.builds(TextPart, text=text), max_size=2)),
        tools=draw(
            st.lists(
                st.builds(
                    ToolSpec,
                    name=name,
                    description=st.none() | text,
                    parameters=st.none() | json_object,
                ),
                max_size=3,
            )
        ),
        tool_choice=maybe(tool_choice),
        max_tokens=maybe(st.integers(1, 100000)),
        temperature=maybe(finite),
        top_p=maybe(finite),
        top_k=maybe(st.integers(1, 100)),
        stop=draw(st.lists(nonempty, max_size=3)),
        response_format=maybe(response_format),
        thinking=maybe(thinking_config),
        seed=maybe(st.integers(0, 2**31)),
        n=maybe(st.integers(1, 4)),
        presence_penalty=maybe(finite),
        frequency_penalty=maybe(finite),
        # user, metadata, stream, tool_choice.parallel, ToolSpec.strict have no Gemini field.
        source_dialect="gemini",
    )


@SETTINGS
@given(requests())
def test_request_round_trip(request: Request) -> None:
    body = orjson.loads(orjson.dumps(gemini.build_request(request, "gemini-3-pro-preview")))
    assert gemini.parse_request(body) == request


@st.composite
def responses(draw: st.DrawFn) -> Response:
    content: list[ContentPart] = draw(
        st.lists(text_part | tool_call | thinking | image, max_size=4)
    )
    has_calls = any(isinstance(p, ToolCallPart) for p in content)
    # Gemini has no tool-use reason: STOP + function calls means TOOL_USE, so END_TURN and
    # TOOL_USE are each only representable on their own side; STOP_SEQUENCE and PAUSE collapse
    # to STOP.
    stops = [StopReason.MAX_TOKENS, StopReason.CONTENT_FILTER, StopReason.ERROR]
    stops.append(StopReason.TOOL_USE if has_calls else StopReason.END_TURN)
    reasoning = draw(st.integers(0, 1000))
    return Response(
        id=draw(text),
        model=draw(text),
        content=content,
        stop_reason=draw(st.sampled_from(stops)),
        usage=Usage(
            input_tokens=draw(st.integers(0, 10**6)),
            output_tokens=reasoning + draw(st.integers(0, 10**5)),  # candidates exclude thoughts
            cache_read_tokens=draw(st.integers(0, 10**5)),
            reasoning_tokens=reasoning,  # cache_write_tokens: Gemini reports no cache writes
        ),
    )


@SETTINGS
@given(responses())
def test_response_round_trip(response: Response) -> None:
    raw = gemini.render_response(response)
    types.GenerateContentResponse.model_validate_json(raw)
    assert gemini.parse_response(orjson.loads(raw)) == response


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[StreamEvent], list[StreamEvent]]:
    """(events fed to the renderer, events the parser must give back). They differ only where
    Gemini is coarser: a function call's argument fragments come back as one delta."""
    model = "relay/model"
    start = MessageStart(id=draw(ident), model=model)
    fed: list[StreamEvent] = [start]
    want: list[StreamEvent] = [start]
    previous = ""
    has_calls = False
    for index in range(draw(st.integers(1, 5))):
        # Two text (or two thinking) blocks in a row would merge: Gemini has no block bounds.
        kind = draw(
            st.sampled_from(
                [k for k in ("text", "thinking", "tool") if k != previous or k == "tool"]
            )
        )
        previous = kind
        if kind == "text":
            block: list[StreamEvent] = [TextStart(index)]
            block += [TextDelta(index, t) for t in draw(st.lists(nonempty, min_size=1, max_size=3))]
            block.append(BlockStop(index))
            fed += block
            want += block
        elif kind == "thinking":
            block = [ThinkingStart(index)]
            block += [
                ThinkingDelta(index, t, origin="gemini")
                for t in draw(st.lists(nonempty, max_size=3))
            ]
            sig = draw(st.none() | signature) if len(block) > 1 else draw(signature)
            if sig is not None:
                block.append(ThinkingDelta(index, "", sig, "gemini"))
            block.append(BlockStop(index))
            fed += block
            want += block
        else:
            has_calls = True
            call_id, call_name, args = draw(ident), draw(name), draw(arguments)
            cuts = sorted(draw(st.lists(st.integers(0, len(args)), max_size=3)))
            pieces = [args[a:b] for a, b in zip([0, *cuts], [*cuts, len(args)], strict=True)]
            fed += [ToolCallStart(index, call_id, call_name)]
            fed += [ToolCallDelta(index, p) for p in pieces]
            fed += [BlockStop(index)]
            want += [
                ToolCallStart(index, call_id, call_name),
                ToolCallDelta(index, args),
                BlockStop(index),
            ]
    if draw(st.booleans()):
        reasoning = draw(st.integers(0, 100))
        usage = UsageEvent(
            Usage(
                input_tokens=draw(st.integers(0, 10**5)),
                output_tokens=reasoning + draw(st.integers(0, 1000)),
                cache_read_tokens=draw(st.integers(0, 100)),
                reasoning_tokens=reasoning,
            )
        )
        fed.append(usage)
        want.append(usage)
    stops = [StopReason.MAX_TOKENS, StopReason.CONTENT_FILTER, StopReason.ERROR]
    stops.append(StopReason.TOOL_USE if has_calls else StopReason.END_TURN)
    stop = MessageStop(draw(st.sampled_from(stops)))
    fed.append(stop)
    want.append(stop)
    return fed, want


def _render(fed: list[StreamEvent], sse: bool) -> bytes:
    renderer = gemini.make_renderer("relay/model", sse=sse)
    return b"".join(renderer.feed(e) for e in fed)


@SETTINGS
@given(streams())
def test_stream_round_trip_sse(pair: tuple[list[StreamEvent], list[StreamEvent]]) -> None:
    fed, want = pair
    raw = _render(fed, sse=True)
    parser = gemini.make_parser()
    got: list[StreamEvent] = []
    for event in SSEDecoder().feed(raw):
        types.GenerateContentResponse.model_validate_json(event.data)
        got += parser.feed(event)
    got += parser.finish()
    assert got == want
    watch = gemini.make_watch()
    watch.feed(raw)
    assert watch.complete
    usage = [e.usage for e in want if isinstance(e, UsageEvent)]
    assert watch.usage == (usage[0] if usage else Usage())


@SETTINGS
@given(streams())
def test_stream_round_trip_json_array(pair: tuple[list[StreamEvent], list[StreamEvent]]) -> None:
    fed, want = pair
    raw = _render(fed, sse=False)
    parser = gemini.make_parser()
    got = [e for chunk in json.loads(raw) for e in parser.feed_chunk(chunk)] + parser.finish()
    assert got == want
    watch = gemini.make_watch()
    watch.feed(raw)
    assert watch.complete


@SETTINGS
@given(streams(), st.sampled_from([400, 429, 500, 503, 504]), nonempty)
def test_stream_error_round_trip(
    pair: tuple[list[StreamEvent], list[StreamEvent]], status: int, message: str
) -> None:
    """A stream broken mid-way: the error chunk parses back as an ErrorEvent with its message,
    and the stream ends there."""
    fed, want = pair
    cut = len(fed) - 1  # drop MessageStop and end with an error instead
    fed = [*fed[:cut], ErrorEvent(GatewayError(ErrorKind.UPSTREAM, message, status=status))]
    raw = _render(fed, sse=True)
    parser = gemini.make_parser()
    got = [e for ev in SSEDecoder().feed(raw) for e in parser.feed(ev)] + parser.finish()
    tail = got[-1]
    assert isinstance(tail, ErrorEvent)
    assert tail.error.message == message
    assert tail.error.kind is upstream_kind_for_status(status)
    assert tail.error.upstream_status == status
    # Gemini has no block bounds: the block open when the error came is never closed.
    assert [e for e in got[:-1] if not isinstance(e, BlockStop)] == [
        e for e in want[:-1] if not isinstance(e, UsageEvent | BlockStop)
    ]
    watch = gemini.make_watch()
    watch.feed(raw)
    assert not watch.complete


@SETTINGS
@given(responses())
def test_stream_and_unary_agree_on_ids(response: Response) -> None:
    """Synthesised call ids are the same whether a response arrives whole or streamed."""
    body: dict[str, Any] = orjson.loads(gemini.render_response(response))
    for part in body["candidates"][0]["content"]["parts"]:
        part.get("functionCall", {}).pop("id", None)
    unary = gemini.parse_response(body).tool_calls()
    parser = gemini.make_parser()
    events = parser.feed_chunk(body)
    streamed = [(e.id, e.name) for e in events if isinstance(e, ToolCallStart)]
    assert streamed == [(c.id, c.name) for c in unary]
