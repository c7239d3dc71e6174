"""Golden files for the OpenAI Chat dialect, both sides.

* ``request/<case>.client.json`` → ``parse_request`` → ``<case>.canonical.json`` →
  ``build_request`` → ``<case>.upstream.json``
* ``response/<case>.upstream.json`` → ``parse_response`` → ``<case>.canonical.json`` →
  ``render_response`` → ``<case>.client.json``
* ``stream/<case>.upstream.sse`` → parser → ``<case>.events.json`` → renderer →
  ``<case>.client.sse``

Set ``RELAYGATE_UPDATE_GOLDEN=1`` to rewrite the outputs after an intended change (and review
the diff).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from tests.dialects.golden import GOLDEN, check_json, check_text, plain

from relaygate.canonical import ErrorEvent, GatewayError, StreamEvent
from relaygate.dialects import openai_chat
from relaygate.dialects.sse import SSEDecoder

ROOT = GOLDEN / "openai_chat"


def _cases(folder: str, suffix: str) -> list[Path]:
    return sorted((ROOT / folder).glob(f"*{suffix}"))


def _stem(path: Path, suffix: str) -> Path:
    return path.with_name(path.name[: -len(suffix)])


@pytest.mark.parametrize("path", _cases("request", ".client.json"), ids=lambda p: p.name)
def test_request_golden(path: Path) -> None:
    stem = _stem(path, ".client.json")
    body = json.loads(path.read_text())
    request = openai_chat.parse_request(body)
    check_json(stem.with_suffix(".canonical.json"), plain(request))
    upstream = openai_chat.build_request(request, "native-model")
    check_json(stem.with_suffix(".upstream.json"), upstream)


@pytest.mark.parametrize("path", _cases("response", ".upstream.json"), ids=lambda p: p.name)
def test_response_golden(path: Path) -> None:
    stem = _stem(path, ".upstream.json")
    body = json.loads(path.read_text())
    try:
        response = openai_chat.parse_response(body)
    except GatewayError as err:
        check_json(stem.with_suffix(".canonical.json"), plain(err))
        check_json(stem.with_suffix(".client.json"), orjson.loads(openai_chat.render_error(err)))
        return
    check_json(stem.with_suffix(".canonical.json"), plain(response))
    check_json(
        stem.with_suffix(".client.json"), orjson.loads(openai_chat.render_response(response))
    )


_CREATED = re.compile(r'"created":\d+')


@pytest.mark.parametrize("path", _cases("stream", ".upstream.sse"), ids=lambda p: p.name)
def test_stream_golden(path: Path) -> None:
    stem = _stem(path, ".upstream.sse")
    raw = path.read_bytes()
    parser = openai_chat.make_parser()
    decoder = SSEDecoder()
    events: list[StreamEvent] = []
    # Feed in small pieces: the decoder must not care where the network cut.
    for i in range(0, len(raw), 37):
        for sse in decoder.feed(raw[i : i + 37]):
            events.extend(parser.feed(sse))
    for sse in decoder.flush():
        events.extend(parser.feed(sse))
    events.extend(parser.finish())
    check_json(stem.with_suffix(".events.json"), plain(events))
    renderer = openai_chat.make_renderer("client-model")
    out = b""
    for event in events:
        if isinstance(event, ErrorEvent):
            out += renderer.error(event.error)
            break
        out += renderer.feed(event)
    check_text(stem.with_suffix(".client.sse"), _CREATED.sub('"created":0', out.decode()))
