"""Bad client input, error rendering and upstream error parsing for the Gemini dialect."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relaygate.canonical import ErrorKind, GatewayError
from relaygate.dialects import gemini

OK_CONTENTS = [{"role": "user", "parts": [{"text": "hi"}]}]


def with_contents(*parts: Any, role: str = "user") -> dict[str, Any]:
    return {"contents": [{"role": role, "parts": list(parts)}]}


BAD: list[tuple[Any, str | None]] = [
    ([], None),  # not an object
    ({}, "contents"),
    ({"contents": None}, "contents"),
    ({"contents": "hi"}, "contents"),
    ({"contents": {"parts": [{"text": "hi"}]}}, "contents"),
    ({"contents": []}, "contents"),
    ({"contents": ["hi"]}, "contents[0]"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}, "contents[0].role"),
    ({"contents": [{"role": ["user"], "parts": []}]}, "contents[0].role"),
    ({"contents": [{"role": "user"}]}, "contents[0].parts"),
    ({"contents": [{"role": "user", "parts": {"text": "hi"}}]}, "contents[0].parts"),
    (with_contents("hi"), "contents[0].parts[0]"),
    (with_contents({"text": 5}), "contents[0].parts[0].text"),
    (with_contents({"text": "x", "thoughtSignature": 5}), "contents[0].parts[0].thoughtSignature"),
    (with_contents({"inlineData": {"data": "AAAA"}}), "contents[0].parts[0].inlineData.mimeType"),
    (
        with_contents({"inlineData": {"mimeType": "image/png"}}),
        "contents[0].parts[0].inlineData.data",
    ),
    (with_contents({"inlineData": "AAAA"}), "contents[0].parts[0].inlineData"),
    (
        with_contents({"fileData": {"mimeType": "image/png"}}),
        "contents[0].parts[0].fileData.fileUri",
    ),
    (
        with_contents({"functionCall": {"args": {}}}, role="model"),
        "contents[0].parts[0].functionCall.name",
    ),
    (
        with_contents({"functionCall": {"name": "f", "args": "{}"}}, role="model"),
        "contents[0].parts[0].functionCall.args",
    ),
    (
        with_contents({"functionResponse": {"response": {}}}),
        "contents[0].parts[0].functionResponse.name",
    ),
    (
        with_contents({"functionResponse": {"name": "f", "response": "ok"}}),
        "contents[0].parts[0].functionResponse.response",
    ),
    ({"contents": OK_CONTENTS, "systemInstruction": 3}, "systemInstruction"),
    ({"contents": OK_CONTENTS, "systemInstruction": {"parts": "x"}}, "systemInstruction.parts"),
    (
        {"contents": OK_CONTENTS, "systemInstruction": {"parts": [{"text": None}]}},
        "systemInstruction.parts[0].text",
    ),
    ({"contents": OK_CONTENTS, "tools": {"functionDeclarations": []}}, "tools"),
    (
        {"contents": OK_CONTENTS, "tools": [{"functionDeclarations": {}}]},
        "tools[0].functionDeclarations",
    ),
    (
        {"contents": OK_CONTENTS, "tools": [{"functionDeclarations": [{"description": "d"}]}]},
        "tools[0].functionDeclarations[0].name",
    ),
    (
        {
            "contents": OK_CONTENTS,
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": []}]}],
        },
        "tools[0].functionDeclarations[0].parameters",
    ),
    ({"contents": OK_CONTENTS, "toolConfig": []}, "toolConfig"),
    (
        {"contents": OK_CONTENTS, "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
        "toolConfig.functionCallingConfig.mode",
    ),
    (
        {
            "contents": OK_CONTENTS,
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": "f"}},
        },
        "toolConfig.functionCallingConfig.allowedFunctionNames",
    ),
    ({"contents": OK_CONTENTS, "generationConfig": "hot"}, "generationConfig"),
    (
        {"contents": OK_CONTENTS, "generationConfig": {"temperature": "hot"}},
        "generationConfig.temperature",
    ),
    (
        {"contents": OK_CONTENTS, "generationConfig": {"temperature": True}},
        "generationConfig.temperature",
    ),
    (
        {"contents": OK_CONTENTS, "generationConfig": {"maxOutputTokens": 1.5}},
        "generationConfig.maxOutputTokens",
    ),
    (
        {"contents": OK_CONTENTS, "generation_config": {"max_output_tokens": "many"}},
        "generationConfig.maxOutputTokens",
    ),
    (
        {"contents": OK_CONTENTS, "generationConfig": {"stopSequences": "END"}},
        "generationConfig.stopSequences",
    ),
    (
        {"contents": OK_CONTENTS, "generationConfig": {"stopSequences": [1]}},
        "generationConfig.stopSequences",
    ),
    (
        {"contents": OK_CONTENTS, "generationConfig": {"responseMimeType": 1}},
        "generationConfig.responseMimeType",
    ),
    (
        {
            "contents": OK_CONTENTS,
            "generationConfig": {"thinkingConfig": {"thinkingBudget": "lots"}},
        },
        "generationConfig.thinkingConfig.thinkingBudget",
    ),
    (
        {"contents": OK_CONTENTS, "generationConfig": {"thinkingConfig": {"thinkingLevel": 3}}},
        "generationConfig.thinkingConfig.thinkingLevel",
    ),
]


@pytest.mark.parametrize(("body", "param"), BAD, ids=[p or "body" for _, p in BAD])
def test_bad_request(body: Any, param: str | None) -> None:
    with pytest.raises(GatewayError) as info:
        gemini.parse_request(body)
    err = info.value
    assert err.kind is ErrorKind.INVALID_REQUEST
    assert err.status == 400
    assert err.param == param
    rendered = json.loads(gemini.render_error(err))
    assert set(rendered) == {"error"}
    assert rendered["error"]["code"] == 400
    assert rendered["error"]["status"] == "INVALID_ARGUMENT"
    assert rendered["error"]["message"] == err.message
    if param is not None:
        [violation] = rendered["error"]["details"][0]["fieldViolations"]
        assert violation["field"] == param


def test_lenient_inputs_are_accepted() -> None:
    """What google-genai or hand-written clients send in practice parses fine."""
    request = gemini.parse_request(
        {
            "contents": [{"parts": [{"text": "no role means user"}]}],
            "systemInstruction": "a bare string",
            "generationConfig": {"topK": 40.0, "maxOutputTokens": "128", "seed": -1},
            "toolConfig": {"functionCallingConfig": {"mode": "any"}},
        }
    )
    assert request.messages[0].text() == "no role means user"
    assert request.system_text() == "a bare string"
    assert (request.top_k, request.max_tokens, request.seed) == (40, 128, -1)
    assert request.tool_choice is not None and request.tool_choice.mode == "required"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("gemini-2.5-flash:generateContent", ("gemini-2.5-flash", "generateContent")),
        ("openrouter/x/y:streamGenerateContent", ("openrouter/x/y", "streamGenerateContent")),
        ("ollama/llama3:8b:generateContent", ("ollama/llama3:8b", "generateContent")),
        ("models/gemini-2.5-pro:countTokens", ("gemini-2.5-pro", "countTokens")),
        (
            "/anthropic:claude-sonnet-4-5:streamGenerateContent",
            ("anthropic:claude-sonnet-4-5", "streamGenerateContent"),
        ),
    ],
)
def test_parse_model_path(tail: str, expected: tuple[str, str]) -> None:
    assert gemini.parse_model_path(tail) == expected


@pytest.mark.parametrize(
    ("tail", "param"),
    [
        ("gemini-2.5-flash", "model"),
        (":generateContent", "model"),
        ("gemini-2.5-flash:embedContent", "method"),
        ("ollama/llama3:8b", "method"),
    ],
)
def test_parse_model_path_rejects(tail: str, param: str) -> None:
    with pytest.raises(GatewayError) as info:
        gemini.parse_model_path(tail)
    assert info.value.kind is ErrorKind.INVALID_REQUEST
    assert info.value.param == param


def test_parse_response_rejects_malformed_bodies() -> None:
    bodies: list[Any] = [
        [],
        {"candidates": "x"},
        {"candidates": [{"content": {"parts": [{"text": 3}]}}]},
    ]
    for body in bodies:
        with pytest.raises(GatewayError) as info:
            gemini.parse_response(body)  # type: ignore[arg-type]
        assert info.value.kind is ErrorKind.UPSTREAM
        assert info.value.status == 502


def test_parse_response_error_in_200() -> None:
    body = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    with pytest.raises(GatewayError) as info:
        gemini.parse_response(body)
    assert info.value.kind is ErrorKind.RATE_LIMIT
    assert info.value.upstream_status == 429
    assert info.value.message == "quota"


def test_parse_error_without_code_uses_grpc_status() -> None:
    err = gemini.parse_error(503, b'{"error": {"message": "busy", "status": "UNAVAILABLE"}}')
    assert (err.kind, err.status, err.code) == (ErrorKind.UNAVAILABLE, 503, "UNAVAILABLE")


def test_stream_error_chunk_without_http_code() -> None:
    parser = gemini.make_parser()
    [event] = parser.feed_chunk({"error": {"message": "deadline", "status": "DEADLINE_EXCEEDED"}})
    assert event.kind == "error"
    assert event.error.kind is ErrorKind.TIMEOUT
    assert event.error.upstream_status == 504
    assert parser.finish() == []
