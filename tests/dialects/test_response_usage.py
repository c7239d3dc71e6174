"""``response_usage``: what the same-dialect non-stream relay uses instead of a full
``parse_response`` — the same verdict on every body (an error body under a 200 raises the
same error, a malformed envelope is refused the same way) and the same usage."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relaygate import dialects
from relaygate.canonical import ErrorKind, GatewayError, Response, TextPart, Usage

NAMES = [dialects.OPENAI_CHAT, dialects.OPENAI_RESPONSES, dialects.ANTHROPIC, dialects.GEMINI]
USAGE = Usage(input_tokens=11, output_tokens=7, cache_read_tokens=3, reasoning_tokens=2)


def _verdict(fn: Any, body: Any) -> tuple[str, Any]:
    try:
        result = fn(body)
    except GatewayError as err:
        return "error", (err.kind, err.message, err.upstream_status)
    return "ok", result.usage if isinstance(result, Response) else result


@pytest.mark.parametrize("name", NAMES)
def test_usage_matches_parse_response(name: str) -> None:
    d = dialects.get(name)
    body = orjson.loads(
        d.render_response(Response(id="r1", model="m", content=[TextPart("hi")], usage=USAGE))
    )
    assert d.response_usage(body) == d.parse_response(body).usage
    assert d.response_usage(body).output_tokens == 7


@pytest.mark.parametrize("name", NAMES)
def test_error_under_200_raises_like_parse_response(name: str) -> None:
    d = dialects.get(name)
    err = GatewayError(ErrorKind.RATE_LIMIT, "slow down")
    body = orjson.loads(d.render_error(err))
    verdict = _verdict(d.response_usage, body)
    assert verdict[0] == "error"
    assert verdict == _verdict(d.parse_response, body)


BAD = [{}, {"usage": {"prompt_tokens": 1}}, {"candidates": 5}, {"content": "x"}, {"output": 3}]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("body", BAD)
def test_malformed_envelopes_get_the_same_verdict(name: str, body: dict[str, Any]) -> None:
    d = dialects.get(name)
    assert _verdict(d.response_usage, body) == _verdict(d.parse_response, body)
