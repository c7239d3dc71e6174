"""Anthropic dialect: validation, error shapes, and behaviours the golden files do not pin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic.types as at
import orjson
import pytest
from pydantic import TypeAdapter

from relaygate import canonical as c
from relaygate.dialects import Dialect
from relaygate.dialects import anthropic as a
from relaygate.dialects.sse import SSEDecoder, SSEEvent

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "anthropic"


def body(**over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    for key, value in over.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def msgs(*content: Any, role: str = "user") -> list[dict[str, Any]]:
    return [{"role": role, "content": list(content)}]


def test_module_satisfies_protocol() -> None:
    dialect: Dialect = a
    assert dialect.NAME == "anthropic" and dialect.CONTENT_TYPE_STREAM == "text/event-stream"


# --------------------------------------------------------------------------- bad input

BAD: list[tuple[Any, str | None]] = [
    ([], None),
    (body(model=...), "model"),
    (body(model=3), "model"),
    (body(messages=...), "messages"),
    (body(messages={"role": "user"}), "messages"),
    (body(max_tokens=...), "max_tokens"),
    (body(max_tokens="10"), "max_tokens"),
    (body(max_tokens=True), "max_tokens"),
    (body(max_tokens=0), "max_tokens"),
    (body(messages=["hi"]), "messages.0"),
    (body(messages=[{"role": "bot", "content": "x"}]), "messages.0.role"),
    (body(messages=[{"role": "user"}]), "messages.0.content"),
    (body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
    (body(messages=msgs("text")), "messages.0.content.0"),
    (body(messages=msgs({"text": "no type"})), "messages.0.content.0.type"),
    (body(messages=msgs({"type": "text"})), "messages.0.content.0.text"),
    (
        body(messages=msgs({"type": "text", "text": "x", "cache_control": "eph"})),
        "messages.0.content.0.cache_control",
    ),
    (body(messages=msgs({"type": "image"})), "messages.0.content.0.source"),
    (
        body(
            messages=msgs(
                {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}
            )
        ),
        "messages.0.content.0.source.data",
    ),
    (
        body(messages=msgs({"type": "image", "source": {"type": "file", "file_id": "f"}})),
        "messages.0.content.0.source.type",
    ),
    (
        body(messages=msgs({"type": "document", "source": {"type": "content"}})),
        "messages.0.content.0.source",
    ),
    (
        body(messages=msgs({"type": "tool_use", "name": "f", "input": {}}, role="assistant")),
        "messages.0.content.0.id",
    ),
    (
        body(
            messages=msgs(
                {"type": "tool_use", "id": "t", "name": "f", "input": [1]}, role="assistant"
            )
        ),
        "messages.0.content.0.input",
    ),
    (
        body(messages=msgs({"type": "tool_result", "content": "x"})),
        "messages.0.content.0.tool_use_id",
    ),
    (
        body(messages=msgs({"type": "tool_result", "tool_use_id": "t", "is_error": "yes"})),
        "messages.0.content.0.is_error",
    ),
    (
        body(messages=msgs({"type": "tool_result", "tool_use_id": "t", "content": 3})),
        "messages.0.content.0.content",
    ),
    (
        body(messages=msgs({"type": "thinking", "signature": "s"}, role="assistant")),
        "messages.0.content.0.thinking",
    ),
    (
        body(messages=msgs({"type": "redacted_thinking"}, role="assistant")),
        "messages.0.content.0.data",
    ),
    (body(system=5), "system"),
    (body(system=[{"type": "image"}]), "system.0"),
    (body(tools={}), "tools"),
    (body(tools=[{"input_schema": {}}]), "tools.0.name"),
    (body(tools=[{"name": "f"}]), "tools.0.input_schema"),
    (body(tools=[{"name": "f", "input_schema": {}, "description": 1}]), "tools.0.description"),
    (body(tool_choice="auto"), "tool_choice"),
    (body(tool_choice={"type": "bogus"}), "tool_choice.type"),
    (body(tool_choice={"type": "tool"}), "tool_choice.name"),
    (
        body(tool_choice={"type": "auto", "disable_parallel_tool_use": "no"}),
        "tool_choice.disable_parallel_tool_use",
    ),
    (body(thinking=True), "thinking"),
    (body(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (body(thinking={"type": "sometimes"}), "thinking.type"),
    (body(temperature="hot"), "temperature"),
    (body(top_p=True), "top_p"),
    (body(top_k=1.5), "top_k"),
    (body(stop_sequences="END"), "stop_sequences"),
    (body(stop_sequences=[1]), "stop_sequences"),
    (body(stream="yes"), "stream"),
    (body(metadata=[]), "metadata"),
    (body(metadata={"user_id": 5}), "metadata.user_id"),
    (body(output_config=[]), "output_config"),
    (body(output_config={"format": {"type": "json_object"}}), "output_config.format"),
]


@pytest.mark.parametrize(("raw", "param"), BAD, ids=[str(p) for _, p in BAD])
def test_bad_input(raw: Any, param: str | None) -> None:
    with pytest.raises(c.GatewayError) as info:
        a.parse_request(raw)
    err = info.value
    assert err.kind is c.ErrorKind.INVALID_REQUEST and err.status == 400
    assert err.param == param
    if param:
        assert param in err.message
    rendered = orjson.loads(a.render_error(err))
    assert rendered == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": err.message},
    }
    at.ErrorResponse.model_validate(rendered)


def test_count_tokens_does_not_need_max_tokens() -> None:
    request = a.count_tokens_request(body(max_tokens=...))
    assert request.max_tokens is None and request.messages[0].text() == "hi"
    assert orjson.loads(a.render_count_tokens(42)) == {"input_tokens": 42}
    at.MessageTokensCount.model_validate_json(a.render_count_tokens(42))


def test_unknown_blocks_are_dropped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    request = a.parse_request(
        body(
            messages=msgs(
                {"type": "search_result", "source": "x", "title": "t", "content": []},
                {"type": "text", "text": "kept"},
            )
        )
    )
    assert request.messages[0].text() == "kept"
    assert "search_result" in caplog.text


# --------------------------------------------------------------------------- error shapes


@pytest.mark.parametrize("kind", list(c.ErrorKind))
def test_render_error_every_kind(kind: c.ErrorKind) -> None:
    err = c.GatewayError(kind, "nope")
    out = orjson.loads(a.render_error(err))
    assert out == {
        "type": "error",
        "error": {"type": a.ERROR_TYPE_FOR_KIND[kind], "message": "nope"},
    }
    if out["error"]["type"] != "request_too_large":  # a real API type the SDK union lacks
        at.ErrorResponse.model_validate(out)


def test_upstream_auth_failure_is_not_the_clients_auth_problem() -> None:
    err = a.parse_error(
        401, b'{"type":"error","error":{"type":"authentication_error","message":"x"}}'
    )
    assert err.kind is c.ErrorKind.AUTHENTICATION and err.status == 502 and err.retryable
    assert orjson.loads(a.render_error(err))["error"]["type"] == "api_error"
    # Our own gateway auth failure (no upstream) stays an authentication_error.
    own = c.GatewayError(c.ErrorKind.AUTHENTICATION, "bad relaygate key")
    assert orjson.loads(a.render_error(own))["error"]["type"] == "authentication_error"


def test_parse_error_never_leaks_keys() -> None:
    err = a.parse_error(
        403, b"forbidden for key sk-ant-api03-SECRETSECRETSECRET and sk-proj1234567890abc"
    )
    assert "SECRET" not in err.message and "1234567890" not in err.message
    assert err.upstream_status == 403 and err.status == 502


def test_error_in_200_raises_from_parse_response() -> None:
    with pytest.raises(c.GatewayError) as info:
        a.parse_response(
            {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
        )
    assert info.value.kind is c.ErrorKind.OVERLOADED and info.value.message == "busy"
    with pytest.raises(c.GatewayError) as info:
        a.parse_response({"id": "x"})
    assert info.value.kind is c.ErrorKind.UPSTREAM


# --------------------------------------------------------------------------- SDK agreement


def test_rendered_responses_validate_with_the_sdk() -> None:
    for path in sorted((GOLDEN / "render_response").glob("*.json")):
        expected = orjson.loads(path.read_bytes())["expected"]
        message = at.Message.model_validate(expected)
        assert message.type == "message"


_EVENT = TypeAdapter(at.RawMessageStreamEvent)


def test_rendered_streams_validate_with_the_sdk() -> None:
    for path in sorted((GOLDEN / "render_stream").glob("*.sse")):
        for event in SSEDecoder().feed(path.read_bytes()):
            data = orjson.loads(event.data)
            assert data["type"] == event.event
            if event.event == "error":
                at.ErrorResponse.model_validate(data)
            elif event.event != "ping":
                _EVENT.validate_python(data)


def test_models_list_shape() -> None:
    models = [
        c.ModelInfo(
            id="anthropic/claude-sonnet-4-5",
            native_id="claude-sonnet-4-5",
            backend="anthropic",
            display_name="Claude Sonnet 4.5",
            created=1759104000,
        ),
        c.ModelInfo(id="openai/gpt-4o", native_id="gpt-4o", backend="openai"),
    ]
    out = orjson.loads(a.render_models(models))
    assert out["has_more"] is False
    assert out["first_id"] == "anthropic/claude-sonnet-4-5" and out["last_id"] == "openai/gpt-4o"
    assert out["data"][0] == {
        "type": "model",
        "id": "anthropic/claude-sonnet-4-5",
        "display_name": "Claude Sonnet 4.5",
        "created_at": "2025-09-29T00:00:00Z",
        "lifecycle": "active",
    }
    assert out["data"][1]["display_name"] == "openai/gpt-4o"
    for item in out["data"]:
        at.ModelInfo.model_validate(item)
    assert orjson.loads(a.render_models([])) == {
        "data": [],
        "has_more": False,
        "first_id": None,
        "last_id": None,
    }


# --------------------------------------------------------------------------- build specifics


def _req(**kw: Any) -> c.Request:
    return c.Request(model="m", messages=[c.Message(c.Role.USER, [c.TextPart("hi")])], **kw)


def test_max_tokens_default_and_override() -> None:
    assert a.build_request(_req(), "m")["max_tokens"] == a.DEFAULT_MAX_TOKENS
    assert a.build_request(_req(), "m", default_max_tokens=999)["max_tokens"] == 999
    assert a.build_request(_req(max_tokens=7), "m", default_max_tokens=999)["max_tokens"] == 7


def test_json_object_becomes_a_system_instruction() -> None:
    """Anthropic has no schema-less JSON mode: the instruction goes after the caller's system
    prompt (after cached blocks, so their prefix still hits); json_schema is native."""
    fmt = c.ResponseFormat("json_object")
    instruction = a.JSON_MODE_INSTRUCTION
    assert a.build_request(_req(response_format=fmt), "m")["system"] == instruction
    plain = _req(response_format=fmt, system=[c.TextPart("Be terse.")])
    assert a.build_request(plain, "m")["system"] == f"Be terse.\n\n{instruction}"
    cached = _req(
        response_format=fmt, system=[c.TextPart("Long rules.", cache_control={"type": "ephemeral"})]
    )
    assert a.build_request(cached, "m")["system"] == [
        {"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": instruction},
    ]
    schema = c.ResponseFormat("json_schema", {"type": "object"})
    built = a.build_request(_req(response_format=schema), "m")
    assert "system" not in built
    assert built["output_config"] == {
        "format": {"type": "json_schema", "schema": {"type": "object"}}
    }
    assert "system" not in a.build_request(_req(response_format=c.ResponseFormat("text")), "m")


def test_thinking_budget_rules() -> None:
    think = c.ThinkingConfig(enabled=True, effort="low")
    out = a.build_request(_req(thinking=think), "m")
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert out["max_tokens"] == a.DEFAULT_MAX_TOKENS + 2048
    tiny = a.build_request(_req(thinking=think, max_tokens=500), "m")
    assert "thinking" not in tiny  # no room for Anthropic's minimum budget
    low = c.ThinkingConfig(enabled=True, budget_tokens=10)
    assert (
        a.build_request(_req(thinking=low, max_tokens=5000), "m")["thinking"]["budget_tokens"]
        == 1024
    )


def test_thinking_is_never_forged() -> None:
    parts: list[c.ContentPart] = [
        c.ThinkingPart(text="g", signature="gsig", origin="gemini"),
        c.ThinkingPart(text="unsigned", origin="anthropic"),
        c.ThinkingPart(text="o", redacted="enc", origin="openai"),
        c.ThinkingPart(text="nobody"),
        c.TextPart("answer"),
    ]
    req = c.Request(
        model="m",
        messages=[c.Message(c.Role.USER, [c.TextPart("q")]), c.Message(c.Role.ASSISTANT, parts)],
    )
    built = a.build_request(req, "m")
    assert built["messages"][1]["content"] == [{"type": "text", "text": "answer"}]


def test_foreign_signature_survives_an_anthropic_client() -> None:
    """Gemini thinking shown to Claude Code comes back with its Gemini signature and origin."""
    resp = c.Response(
        id="r",
        model="m",
        content=[c.ThinkingPart(text="t", signature="gem-sig", origin="gemini"), c.TextPart("x")],
    )
    echoed = orjson.loads(a.render_response(resp))["content"]
    request = a.parse_request(
        body(messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": echoed}])
    )
    assert request.messages[1].content[0] == c.ThinkingPart(
        text="t", signature="gem-sig", origin="gemini"
    )
    # …and is not sent to Anthropic.
    assert a.build_request(request, "m")["messages"][1]["content"] == [
        {"type": "text", "text": "x"}
    ]


def test_cross_dialect_extras_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="relaygate.dialects.anthropic")
    req = _req(source_dialect="openai-chat", extras={"logprobs": True}, seed=3, metadata={"k": "v"})
    out = a.build_request(req, "m")
    assert "logprobs" not in out and "seed" not in out and "metadata" not in out
    assert "logprobs" in caplog.text and "seed" in caplog.text


# --------------------------------------------------------------------------- streams


def test_tool_argument_fragments_are_relayed_one_by_one() -> None:
    r = a.make_renderer("m")
    r.feed(c.MessageStart(id="i", model="m"))
    r.feed(c.ToolCallStart(0, "toolu_1", "f"))
    for fragment in ['{"pa', 'th": "/tmp', '/x"}']:
        out = r.feed(c.ToolCallDelta(0, fragment))
        (event,) = SSEDecoder().feed(out)
        assert orjson.loads(event.data)["delta"] == {
            "type": "input_json_delta",
            "partial_json": fragment,
        }


def test_renderer_is_silent_after_the_end() -> None:
    r = a.make_renderer("m")
    assert b"message_stop" in r.feed(c.MessageStop(c.StopReason.END_TURN))
    assert r.feed(c.TextStart(0)) == b""
    r2 = a.make_renderer("m")
    r2.feed(c.MessageStart(id="i", model="m"))
    out = r2.error(c.GatewayError(c.ErrorKind.TIMEOUT, "slow"))
    assert (
        out
        == b'event: error\ndata: {"type":"error","error":{"type":"timeout_error","message":"slow"}}\n\n'
    )
    assert r2.feed(c.MessageStop(c.StopReason.END_TURN)) == b""


def test_parser_malformed_event() -> None:
    p = a.make_parser()
    (event,) = p.feed(SSEEvent("message_start", "{not json"))
    assert isinstance(event, c.ErrorEvent) and event.error.kind is c.ErrorKind.UPSTREAM
    assert p.finish() == []


def test_watch_ignores_markers_inside_text_and_survives_splits() -> None:
    raw = (
        b'event: message_start\r\ndata: {"type":"message_start","message":{"id":"m","usage":'
        b'{"input_tokens":5,"cache_read_input_tokens":7,"output_tokens":1}}}\r\n\r\n'
        b'event: content_block_delta\r\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"{\\"type\\":\\"message_stop\\"} \\"error\\""}}\r\n\r\n'
    )
    for size in (1, 7, len(raw)):
        watch = a.make_watch()
        for i in range(0, len(raw), size):
            watch.feed(raw[i : i + size])
        assert not watch.complete and watch.error is None
        assert watch.usage == c.Usage(input_tokens=12, output_tokens=1, cache_read_tokens=7)
    watch.feed(b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error"}}\n\n')
    assert watch.error is not None and not watch.complete
    assert watch.error.code == "overloaded_error"
    watch.feed(b'event: message_stop\ndata: {"type": "message_stop"}\n\n')
    assert watch.complete
