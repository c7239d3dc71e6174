"""The check of a same-dialect stream's first chunk (an error or garbage under a 200), with
the Chat fast path that skips SSE decoding for an ordinary first event."""

from __future__ import annotations

import pytest

from relaygate.dialects import get
from relaygate.routing.attempt import _stream_error_in, _strip

CHAT = get("openai-chat")


@pytest.mark.parametrize(
    "first",
    [
        b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n',
        b'data:{"id":"c","choices":[]}\r\n\r\ndata: {"id":"c"}\n\ndata: [DONE]\n\n',
        b'data: {"id":"c","choices":[]}\n',  # the event's end has not arrived yet
        b': keep-alive\n\ndata: {"id":"c","choices":[]}\n\n',  # a comment first: full check
        b'data: {"id":"c",\ndata: "choices":[]}\n\n',  # two data lines: the decoder joins them
    ],
)
def test_ordinary_first_chat_chunks_pass(first: bytes) -> None:
    assert _stream_error_in(first, CHAT) is None


@pytest.mark.parametrize(
    ("first", "message"),
    [
        (b"data: {not json\n\n", "malformed"),
        (b'data: {"id":"c",\ndata: "x"\n\n', "malformed"),  # two data lines, joined: garbled
        (b'data: {"error":{"message":"overloaded","code":"busy"}}\n\n', "overloaded"),
        (b'{"error":{"message":"bad key"}}', "JSON body"),
    ],
)
def test_bad_first_chat_chunks_are_errors(first: bytes, message: str) -> None:
    err = _stream_error_in(first, CHAT)
    assert err is not None and message in err.message


@pytest.mark.parametrize(
    ("chunk", "kept"),
    [
        (b'data: {"choices":[{"delta":{}}]}\n\n', b'data: {"choices":[{"delta":{}}]}\n\n'),
        (
            b'data: {"choices":[{"delta":{}}]}\n\ndata: {"choices":[],"usage":{}}\n\n'
            b"data: [DONE]\n\n",
            b'data: {"choices":[{"delta":{}}]}\n\ndata: [DONE]\n\n',
        ),
        (b'data: {"choices":[],"usage":{}}\n\ndata: [DONE]\n\n', b"data: [DONE]\n\n"),
        (b'data: {"choices":[],"usage":{}}\n\n', b""),
        (  # two usage events, one between kept ones
            b'data: {"choices":[]}\n\ndata: {"id":1}\n\ndata: {"choices":[]}\n\ndata: {"id":2}\n\n',
            b'data: {"id":1}\n\ndata: {"id":2}\n\n',
        ),
        (b'data: {"id":1}\n\ndata: {"choices":[],"usa', b'data: {"id":1}\n\n'),  # cut short
    ],
)
def test_strip_drops_only_the_usage_events(chunk: bytes, kept: bytes) -> None:
    assert _strip(chunk) == kept
