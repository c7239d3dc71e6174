"""Behaviour of the Gemini dialect that goldens do not pin: protocol surface, dropped-field
logging, stream parser and watch edge cases, model listing."""

from __future__ import annotations

import json
import logging

import pytest
from google.genai import types

from relaygate import dialects
from relaygate.canonical import (
    ErrorEvent,
    ErrorKind,
    GatewayError,
    Message,
    MessageStop,
    ModelInfo,
    Request,
    Role,
    TextDelta,
    TextPart,
    ThinkingConfig,
    ToolChoice,
    ToolSpec,
    Usage,
    UsageEvent,
)
from relaygate.dialects import gemini
from relaygate.dialects.sse import SSEEvent


def test_module_satisfies_dialect_protocol() -> None:
    module = dialects.get(dialects.GEMINI)
    assert module is gemini  # type: ignore[comparison-overlap]
    assert gemini.NAME == dialects.GEMINI
    assert gemini.CONTENT_TYPE_STREAM == "text/event-stream"
    members = {n for n in vars(dialects.Dialect) if not n.startswith("_")}
    members |= set(dialects.Dialect.__annotations__)
    assert members >= {"parse_request", "make_watch", "NAME"}
    for attr in members:
        assert hasattr(gemini, attr), attr
    conforming: dialects.Dialect = gemini  # mypy checks the module against the protocol
    assert conforming.make_renderer("m").feed(TextDelta(0, "x"))


def test_build_request_logs_dropped_fields(caplog: pytest.LogCaptureFixture) -> None:
    request = Request(
        model="x",
        messages=[Message(Role.USER, [TextPart("hi")], name="bob")],
        tools=[ToolSpec("f", strict=True)],
        tool_choice=ToolChoice("auto", parallel=False),
        thinking=ThinkingConfig(effort="ludicrous"),
        user="u1",
        metadata={"a": 1},
        extras={"store": True},
        source_dialect="openai-chat",
    )
    with caplog.at_level(logging.DEBUG, logger="relaygate.dialects.gemini"):
        body = gemini.build_request(request, "gemini-2.5-flash")
    logged = " ".join(r.getMessage() for r in caplog.records)
    for name in (
        "message.name",
        "tool.strict",
        "tool_choice.parallel",
        "thinking.effort=ludicrous",
        "user",
        "metadata",
        "extras.store",
    ):
        assert name in logged
    assert "store" not in body and "user" not in body
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}


@pytest.mark.parametrize(
    ("thinking", "model", "expected"),
    [
        (ThinkingConfig(effort="high"), "gemini-3-pro-preview", {"thinkingLevel": "HIGH"}),
        (ThinkingConfig(effort="high"), "gemini-2.5-pro", {"thinkingBudget": 24576}),
        (
            ThinkingConfig(effort="low", budget_tokens=900),
            "gemini-3-flash",
            {"thinkingLevel": "LOW"},
        ),
        (
            ThinkingConfig(effort="low", budget_tokens=900),
            "gemini-2.5-flash",
            {"thinkingBudget": 900},
        ),
        (ThinkingConfig(budget_tokens=900), "gemini-3-pro-preview", {"thinkingBudget": 900}),
        (
            ThinkingConfig(adaptive=True, effort="medium"),
            "gemini-3-pro",
            {"thinkingLevel": "MEDIUM"},
        ),
        (ThinkingConfig(adaptive=True), "gemini-2.5-flash", {"thinkingBudget": -1}),
        (ThinkingConfig(enabled=False, effort="high"), "gemini-3-pro", {"thinkingBudget": 0}),
    ],
)
def test_thinking_sends_a_level_or_a_budget(
    thinking: ThinkingConfig, model: str, expected: dict[str, object]
) -> None:
    request = Request("m", [Message(Role.USER, [TextPart("x")])], thinking=thinking)
    config = gemini.build_request(request, model)["generationConfig"]["thinkingConfig"]
    config.pop("includeThoughts", None)
    assert config == expected


def test_effort_none_disables_thinking() -> None:
    request = Request(
        "m", [Message(Role.USER, [TextPart("x")])], thinking=ThinkingConfig(effort="none")
    )
    body = gemini.build_request(request, "m")
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_parser_ignores_blank_and_done_and_stops_after_terminal() -> None:
    parser = gemini.make_parser()
    assert parser.feed(SSEEvent(None, "")) == []
    assert parser.feed(SSEEvent(None, "[DONE]")) == []
    events = parser.feed_chunk(
        {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}
    )
    assert isinstance(events[-1], MessageStop)
    assert not any(isinstance(e, UsageEvent) for e in events)  # none reported, none invented
    assert parser.feed_chunk({"candidates": [{"content": {"parts": [{"text": "late"}]}}]}) == []
    assert parser.finish() == []


def test_parser_malformed_chunk_is_an_upstream_error() -> None:
    parser = gemini.make_parser()
    [event] = parser.feed(SSEEvent(None, "{not json"))
    assert isinstance(event, ErrorEvent)
    assert event.error.kind is ErrorKind.UPSTREAM
    assert parser.finish() == []


def test_parser_prompt_blocked_in_stream() -> None:
    parser = gemini.make_parser()
    events = parser.feed_chunk(
        {
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 4},
        }
    )
    assert [e.kind for e in events] == ["message_start", "usage", "message_stop"]
    assert events[-1].stop_reason.value == "content_filter"  # type: ignore[union-attr]


def test_parser_streams_text_deltas_without_buffering() -> None:
    parser = gemini.make_parser()
    first = parser.feed_chunk({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})
    second = parser.feed_chunk({"candidates": [{"content": {"parts": [{"text": "b"}]}}]})
    assert [e.kind for e in first] == ["message_start", "text_start", "text_delta"]
    assert second == [TextDelta(0, "b")]


def test_watch_cut_stream_keeps_prompt_usage() -> None:
    watch = gemini.make_watch()
    chunk = {
        "candidates": [{"content": {"parts": [{"text": "partial"}]}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 42, "totalTokenCount": 42},
    }
    raw = b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
    for i in range(len(raw)):
        watch.feed(raw[i : i + 1])
    assert not watch.complete
    assert watch.usage == Usage(input_tokens=42)


def test_watch_ignores_finish_reason_inside_text() -> None:
    watch = gemini.make_watch()
    chunk = {"candidates": [{"content": {"parts": [{"text": 'say "finishReason": "STOP"'}]}}]}
    watch.feed(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    assert not watch.complete


def test_watch_json_array_pretty_terminal_without_newline() -> None:
    watch = gemini.make_watch()
    first = {
        "candidates": [{"content": {"parts": [{"text": "a"}]}}],
        "usageMetadata": {"promptTokenCount": 3},
    }
    last = {
        "candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
    }
    watch.feed(b"[" + json.dumps(first).encode())
    watch.feed(b"\r\n," + json.dumps(last)[:20].encode())
    assert not watch.complete
    watch.feed(json.dumps(last)[20:].encode() + b"]")
    assert watch.complete
    assert watch.usage == Usage(input_tokens=3, output_tokens=2)


def test_renderer_error_closes_stream() -> None:
    renderer = gemini.make_renderer("m")
    out = renderer.error(GatewayError(ErrorKind.RATE_LIMIT, "slow down", retry_after=3))
    assert out.startswith(b"data: {")
    body = json.loads(out[6:])
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert body["error"]["details"][0]["retryDelay"] == "3s"
    assert renderer.feed(TextDelta(0, "more")) == b""
    assert renderer.error(GatewayError(ErrorKind.UPSTREAM, "again")) == b""


def test_renderer_json_array_error_before_any_chunk() -> None:
    renderer = gemini.make_renderer("m", sse=False)
    out = renderer.error(GatewayError(ErrorKind.UPSTREAM, "boom"))
    assert json.loads(out) == [{"error": {"code": 502, "message": "boom", "status": "INTERNAL"}}]


def test_render_models() -> None:
    models = [
        ModelInfo(
            "openai/gpt-4o", "gpt-4o", "openai", display_name="GPT-4o", context_window=128000
        ),
        ModelInfo("ollama/llama3:8b", "llama3:8b", "ollama-local", owned_by="meta"),
    ]
    body = json.loads(gemini.render_models(models))
    assert [m["name"] for m in body["models"]] == [
        "models/openai/gpt-4o",
        "models/ollama/llama3:8b",
    ]
    first = body["models"][0]
    assert first["displayName"] == "GPT-4o"
    assert first["inputTokenLimit"] == 128000
    assert "generateContent" in first["supportedGenerationMethods"]
    assert gemini.parse_model_path(first["name"] + ":generateContent")[0] == "openai/gpt-4o"
    # google-genai reads the REST model shape through its own converter; the plain fields load.
    for item in body["models"]:
        types.Model.model_validate(
            {
                "name": item["name"],
                "display_name": item["displayName"],
                "version": item["version"],
                "description": item["description"],
                "input_token_limit": item.get("inputTokenLimit"),
            }
        )


@pytest.mark.parametrize("sse", [True, False])
def test_watch_records_an_error_chunk(sse: bool) -> None:
    first = {
        "candidates": [{"content": {"parts": [{"text": 'say "error"'}]}}],
        "usageMetadata": {"promptTokenCount": 3},
    }
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    if sse:
        wire = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in (first, error))
    else:
        wire = b"[" + json.dumps(first).encode() + b"\r\n," + json.dumps(error).encode() + b"]"
    for size in (1, 11, len(wire)):
        watch = gemini.make_watch()
        for i in range(0, len(wire), size):
            watch.feed(wire[i : i + size])
        assert not watch.complete
        assert watch.error is not None and watch.error.message == "The model is overloaded."
        assert watch.usage == Usage(input_tokens=3)
