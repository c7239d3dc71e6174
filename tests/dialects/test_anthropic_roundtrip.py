"""Round trips through the Anthropic dialect, generated with hypothesis.

* Requests: ``build_request`` → ``parse_request`` gives the same canonical Request.
* Responses: ``render_response`` → ``parse_response``.
* Streams: ``make_renderer().feed`` → ``SSEDecoder`` → ``make_parser().feed``.

Strategies only generate what the dialect can represent; each narrowing says why.
"""

from __future__ import annotations

import base64
import string
from typing import Any, Literal

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaygate import canonical as c
from relaygate.dialects import anthropic as a
from relaygate.dialects.sse import SSEDecoder

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Empty text blocks are rejected by Anthropic, so build_request drops them: text is non-empty.
text = st.text(min_size=1, max_size=30)
ident = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12)
# Signatures never start with relaygate's "rg:" wrapper (that is how foreign ones are tagged).
opaque = st.text(string.ascii_letters + string.digits + "+/=", min_size=1, max_size=24)
cache = st.none() | st.just({"type": "ephemeral"})
json_scalar = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ident, inner, max_size=3),
    max_leaves=6,
)
json_object = st.dictionaries(ident, json_value, max_size=4)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


text_part = st.builds(c.TextPart, text, cache_control=cache)
# ImagePart.detail has no Anthropic counterpart; https URLs only (data: URLs become base64).
image_part = st.one_of(
    st.builds(
        c.ImagePart,
        media_type=st.sampled_from(["image/png", "image/jpeg"]),
        data=st.binary(min_size=1, max_size=12).map(b64),
    ),
    st.builds(c.ImagePart, url=ident.map(lambda s: f"https://example.com/{s}.png")),
)
document_part = st.one_of(
    st.builds(
        c.DocumentPart,
        media_type=st.just("application/pdf"),
        data=st.binary(min_size=1, max_size=12).map(b64),
        filename=st.none() | text,
    ),
    # Plain-text documents travel as text; canonical keeps them base64 like any inline data.
    st.builds(
        c.DocumentPart,
        media_type=st.just("text/plain"),
        data=text.map(lambda s: b64(s.encode())),
        filename=st.none() | text,
    ),
    st.builds(
        c.DocumentPart,
        url=ident.map(lambda s: f"https://example.com/{s}.pdf"),
        filename=st.none() | text,
    ),
)
# Arguments travel as a JSON object, so canonical text must be that object's compact JSON.
tool_call = st.builds(
    c.ToolCallPart, ident, ident, json_object.map(lambda d: orjson.dumps(d).decode())
)
# Anthropic can only verify its own signed (or redacted) thinking; nothing else is sent to it.
thinking = st.one_of(
    st.builds(
        c.ThinkingPart, text=st.text(max_size=20), signature=opaque, origin=st.just("anthropic")
    ),
    st.builds(c.ThinkingPart, redacted=opaque, origin=st.just("anthropic")),
)
# Tool results carry no name on the wire (Gemini's field), and only text and images.
tool_result = st.builds(
    c.ToolResultPart, ident, st.lists(text_part | image_part, max_size=3), is_error=st.booleans()
)

user_msg = st.builds(
    c.Message,
    st.just(c.Role.USER),
    st.lists(text_part | image_part | document_part, min_size=1, max_size=3),
)
assistant_msg = st.builds(
    c.Message,
    st.just(c.Role.ASSISTANT),
    st.tuples(
        st.lists(thinking, max_size=2),
        st.lists(text_part, max_size=2),
        st.lists(tool_call, max_size=3),
    )
    .map(lambda t: [*t[0], *t[1], *t[2]])
    .filter(bool),
)
# One result per TOOL message, as parse_request produces them.
tool_msgs = st.lists(
    st.builds(lambda r: c.Message(c.Role.TOOL, [r]), tool_result), min_size=1, max_size=3
)
turns = st.lists(
    st.one_of(user_msg.map(lambda m: [m]), assistant_msg.map(lambda m: [m]), tool_msgs),
    min_size=1,
    max_size=5,
).map(lambda groups: [m for g in groups for m in g])

tool_spec = st.builds(
    c.ToolSpec,
    ident,
    description=st.none() | text,
    # A missing schema is sent as an empty object schema, so generate one.
    parameters=st.just({"type": "object", "properties": {}}) | st.just({"type": "object"}),
    strict=st.none() | st.just(True),  # strict=False is not sent (compatible servers reject it)
    cache_control=cache,
)


@st.composite
def requests(draw: st.DrawFn) -> c.Request:
    max_tokens = draw(st.integers(1, 64000))
    tools = draw(st.lists(tool_spec, max_size=3, unique_by=lambda t: t.name))
    choice = None
    if tools:  # tool_choice is only sent alongside tools
        mode: Literal["auto", "none", "required", "tool"] = draw(
            st.sampled_from(["auto", "none", "required", "tool"])
        )
        choice = c.ToolChoice(
            mode=mode,
            name=tools[0].name if mode == "tool" else None,
            parallel=None if mode == "none" else draw(st.none() | st.booleans()),
        )
    thinking_options: list[c.ThinkingConfig | None] = [
        None,
        c.ThinkingConfig(enabled=False),
        c.ThinkingConfig(enabled=True, adaptive=True),
    ]
    if max_tokens > 1024:  # budgets must sit in [1024, max_tokens)
        thinking_options.append(
            c.ThinkingConfig(enabled=True, budget_tokens=draw(st.integers(1024, max_tokens - 1)))
        )
    return c.Request(
        model=draw(ident),
        messages=draw(turns),
        system=draw(st.lists(text_part, max_size=2)),
        tools=tools,
        tool_choice=choice,
        max_tokens=max_tokens,  # build_request would otherwise fill in its default
        temperature=draw(st.none() | st.floats(0, 1)),
        top_p=draw(st.none() | st.floats(0, 1)),
        top_k=draw(st.none() | st.integers(1, 500)),
        stop=draw(st.lists(text, max_size=2)),
        stream=draw(st.booleans()),
        response_format=draw(
            st.none() | st.builds(c.ResponseFormat, type=st.just("json_schema"), schema=json_object)
        ),
        thinking=draw(st.sampled_from(thinking_options)),
        user=draw(st.none() | text),
        # Extras and extra metadata only survive for a request that came from this dialect.
        metadata=draw(st.dictionaries(st.sampled_from(["tier", "trace"]), json_value, max_size=2)),
        extras=draw(
            st.dictionaries(
                st.sampled_from(["service_tier", "context_management", "container"]),
                json_value,
                max_size=2,
            )
        ),
        source_dialect="anthropic",
        # seed, n, penalties: no Anthropic counterpart, left unset.
    )


@SETTINGS
@given(requests())
def test_request_round_trip(request: c.Request) -> None:
    built = a.build_request(request, request.model)
    assert a.parse_request(orjson.loads(orjson.dumps(built))) == request


# --------------------------------------------------------------------------- responses

# Responses carry no cache_control, and thinking from any family survives an Anthropic client.
response_thinking = st.one_of(
    thinking,
    st.builds(
        c.ThinkingPart,
        text=st.text(max_size=10),
        signature=st.none() | opaque,
        origin=st.sampled_from(["gemini", "openai"]),
    ),
    st.builds(c.ThinkingPart, redacted=opaque, origin=st.sampled_from(["gemini", "openai"])),
    st.builds(c.ThinkingPart, text=st.text(max_size=10)),  # unsigned, origin unknown
)


@st.composite
def usages(draw: st.DrawFn, *, reasoning: bool = True) -> c.Usage:
    fresh, read, write = (
        draw(st.integers(0, 10**6)),
        draw(st.integers(0, 10**5)),
        draw(st.integers(0, 10**5)),
    )
    return c.Usage(
        input_tokens=fresh + read + write,
        output_tokens=draw(st.integers(0, 10**5)),
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=draw(st.integers(0, 1000)) if reasoning else 0,
    )


# StopReason.ERROR has no Anthropic stop reason.
stop_reasons = st.sampled_from([r for r in c.StopReason if r is not c.StopReason.ERROR])

responses = st.builds(
    c.Response,
    id=ident,
    model=ident,
    content=st.lists(
        st.builds(c.TextPart, st.text(max_size=20)) | tool_call | response_thinking, max_size=4
    ),
    stop_reason=stop_reasons,
    stop_sequence=st.none() | text,
    usage=usages(),
)


@SETTINGS
@given(responses)
def test_response_round_trip(response: c.Response) -> None:
    assert a.parse_response(orjson.loads(a.render_response(response))) == response


# --------------------------------------------------------------------------- streams


def _block(index: int, draw: st.DrawFn) -> list[c.StreamEvent]:
    kind = draw(st.sampled_from(["text", "tool", "thinking", "redacted"]))
    events: list[c.StreamEvent]
    if kind == "text":
        events = [c.TextStart(index)]
        events += [c.TextDelta(index, t) for t in draw(st.lists(text, max_size=3))]
    elif kind == "tool":
        events = [c.ToolCallStart(index, draw(ident), draw(ident))]
        # Empty fragments carry nothing and are not relayed.
        events += [c.ToolCallDelta(index, t) for t in draw(st.lists(text, max_size=4))]
    elif kind == "thinking":
        # The wire splits text and signature into separate deltas: generate them apart.
        events = [c.ThinkingStart(index)]
        events += [
            c.ThinkingDelta(index, text=t, origin="anthropic")
            for t in draw(st.lists(text, max_size=3))
        ]
        events.append(c.ThinkingDelta(index, signature=draw(opaque), origin="anthropic"))
    else:
        events = [c.ThinkingStart(index, redacted=draw(opaque))]
    return [*events, c.BlockStop(index)]


@st.composite
def streams(draw: st.DrawFn) -> list[c.StreamEvent]:
    final = draw(usages())
    # message_start reports input usage only; a single UsageEvent carries the totals, as the
    # parser merges everything it saw into one at message_delta.
    start_usage = c.Usage(
        input_tokens=final.input_tokens,
        cache_read_tokens=final.cache_read_tokens,
        cache_write_tokens=final.cache_write_tokens,
    )
    events: list[c.StreamEvent] = [
        c.MessageStart(id=draw(ident), model="client-model", usage=start_usage)
    ]
    # Blocks are sequential with wire indices 0..n-1; interleaving is pinned by golden files.
    for index in range(draw(st.integers(0, 4))):
        events += _block(index, draw)
    if draw(st.booleans()):
        events += [c.UsageEvent(final), c.MessageStop(draw(stop_reasons), draw(st.none() | text))]
    else:
        # Kinds whose Anthropic error type maps back to themselves.
        kind = draw(
            st.sampled_from(
                [
                    c.ErrorKind.INVALID_REQUEST,
                    c.ErrorKind.NOT_FOUND,
                    c.ErrorKind.REQUEST_TOO_LARGE,
                    c.ErrorKind.RATE_LIMIT,
                    c.ErrorKind.OVERLOADED,
                    c.ErrorKind.TIMEOUT,
                    c.ErrorKind.UPSTREAM,
                ]
            )
        )
        events.append(c.ErrorEvent(c.GatewayError(kind, draw(text))))
    return events


def _comparable(event: c.StreamEvent) -> Any:
    if isinstance(event, c.ErrorEvent):
        return ("error", event.error.kind, event.error.message, event.error.status)
    return event


@SETTINGS
@given(streams(), st.integers(1, 64))
def test_stream_round_trip(events: list[c.StreamEvent], chunk: int) -> None:
    renderer = a.make_renderer("client-model")
    wire = b"".join(renderer.feed(e) for e in events)
    decoder, parser = SSEDecoder(), a.make_parser()
    out: list[c.StreamEvent] = []
    for i in range(0, len(wire), chunk):
        for sse in decoder.feed(wire[i : i + chunk]):
            out += parser.feed(sse)
    out += parser.finish()
    assert [_comparable(e) for e in out] == [_comparable(e) for e in events]

    watch = a.make_watch()
    for i in range(0, len(wire), chunk):
        watch.feed(wire[i : i + chunk])
    assert watch.complete == isinstance(events[-1], c.MessageStop)
    if watch.complete:
        assert watch.usage == next(e.usage for e in events if isinstance(e, c.UsageEvent))
