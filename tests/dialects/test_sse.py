from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relaygate.dialects import sse
from relaygate.dialects.sse import DONE, SSEDecoder, SSEEvent, encode


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def test_data_and_event_fields() -> None:
    raw = b'event: message_start\ndata: {"a":1}\n\ndata: [DONE]\n\n'
    assert decode_all([raw]) == [SSEEvent("message_start", '{"a":1}'), SSEEvent(None, "[DONE]")]


def test_crlf_and_cr_line_ends() -> None:
    assert decode_all([b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]) == [
        SSEEvent(None, "a"),
        SSEEvent(None, "b"),
        SSEEvent(None, "c"),
    ]


def test_crlf_split_across_chunks() -> None:
    assert decode_all([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]) == [
        SSEEvent(None, "a"),
        SSEEvent(None, "b"),
    ]


def test_multiline_data_comments_and_no_space() -> None:
    raw = b": keep-alive\n\ndata:x\ndata: y\nid: 7\nretry: 10\n\n"
    assert decode_all([raw]) == [SSEEvent(None, "x\ny")]


def test_event_split_mid_field() -> None:
    raw = b'data: {"choices":[{"delta":{"content":"hello"}}]}\n\n'
    for cut in range(1, len(raw)):
        assert decode_all([raw[:cut], raw[cut:]]) == [
            SSEEvent(None, '{"choices":[{"delta":{"content":"hello"}}]}')
        ]


def test_flush_returns_unterminated_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.flush() == [SSEEvent(None, "tail")]
    assert decoder.flush() == []


def test_multibyte_utf8_split_across_chunks() -> None:
    raw = "data: héllo ✓\n\n".encode()
    cut = raw.index("✓".encode()) + 1
    assert decode_all([raw[:cut], raw[cut:]]) == [SSEEvent(None, "héllo ✓")]


def test_encode() -> None:
    assert encode('{"a":1}') == b'data: {"a":1}\n\n'
    assert encode(b"x", event="ping") == b"event: ping\ndata: x\n\n"
    assert DONE == b"data: [DONE]\n\n"


_payload = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
)


@given(
    st.lists(st.tuples(st.none() | st.sampled_from(["a", "delta", "x-y"]), _payload), max_size=8),
    st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_round_trip_any_chunking(events: list[tuple[str | None, str]], cuts: list[int]) -> None:
    wire = b"".join(encode(data, event=name) for name, data in events)
    points = sorted({min(c, len(wire)) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    expected = [SSEEvent(name, data) for name, data in events]
    assert decode_all(chunks) == expected


@given(st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b))
def test_single_data_line_shortcut_matches_the_general_parser(payload: bytes) -> None:
    """``data: …`` blocks take a shortcut; it must read them exactly as the field loop does
    (checked against the same block with a comment line, which forces the loop)."""
    fast = sse._parse_block(b"data: " + payload)
    general = sse._parse_block(b": keep-alive\ndata: " + payload)
    assert fast == general
