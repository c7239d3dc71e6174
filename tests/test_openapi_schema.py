"""What relaygate emits validates against OpenAI's own OpenAPI spec.

The spec lives next to the repository (``../shared/specs/openai-openapi.yaml`` from the repo
root, as in CI where the repo is cloned beside ``shared/``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from relaygate.canonical import (
    BlockStop,
    ErrorKind,
    GatewayError,
    MessageStart,
    MessageStop,
    Response,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    ThinkingDelta,
    ThinkingPart,
    ThinkingStart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    Usage,
    UsageEvent,
)
from relaygate.dialects import openai_chat

SPEC = Path(__file__).resolve().parent.parent.parent / "shared" / "specs" / "openai-openapi.yaml"
URI = "urn:openai-openapi"


def _nullable(node: Any) -> Any:
    """Honour OpenAPI's ``nullable: true`` (still used by this 3.1 spec), which JSON Schema
    itself ignores: such a schema also accepts ``null``."""
    if isinstance(node, list):
        return [_nullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str) and "$ref" not in out and "allOf" not in out:
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _registry() -> Registry:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = _nullable(yaml.load(SPEC.read_text(), Loader=loader))
    resource: Resource[Any] = Resource.from_contents(spec, default_specification=DRAFT202012)
    return Registry().with_resource(URI, resource)


def validator(name: str) -> Draft202012Validator:
    if not SPEC.exists():
        pytest.skip(f"OpenAI OpenAPI spec not found at {SPEC} (clone the repo next to shared/)")
    schema = {"$ref": f"{URI}#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=_registry())


def assert_valid(name: str, obj: Any) -> None:
    errors = sorted(validator(name).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


USAGE = Usage(input_tokens=20, output_tokens=9, cache_read_tokens=4, reasoning_tokens=3)
RESPONSES = {
    "text": Response(id="chatcmpl-1", model="m", content=[TextPart("hi")], usage=USAGE),
    "tools": Response(
        id="abc",
        model="m",
        content=[
            ToolCallPart(id="call_1", name="f", arguments='{"a":1}'),
            ToolCallPart(id="call_2", name="g", arguments="{}"),
        ],
        stop_reason=StopReason.TOOL_USE,
    ),
    "text_and_reasoning": Response(
        id="chatcmpl-2",
        model="m",
        content=[ThinkingPart(text="hmm", signature="sig"), TextPart("ok")],
        stop_reason=StopReason.MAX_TOKENS,
    ),
    "empty": Response(
        id="chatcmpl-3", model="m", content=[], stop_reason=StopReason.CONTENT_FILTER
    ),
}


@pytest.mark.parametrize("name", RESPONSES)
def test_chat_completion_object(name: str) -> None:
    assert_valid(
        "CreateChatCompletionResponse", orjson.loads(openai_chat.render_response(RESPONSES[name]))
    )


EVENTS: list[StreamEvent] = [
    MessageStart(id="chatcmpl-9", model="m"),
    ThinkingStart(0),
    ThinkingDelta(0, "think"),
    BlockStop(0),
    TextStart(1),
    TextDelta(1, "Hello"),
    BlockStop(1),
    ToolCallStart(2, "call_1", "f"),
    ToolCallDelta(2, '{"a":'),
    ToolCallDelta(2, "1}"),
    BlockStop(2),
    ToolCallStart(3, "call_2", "g"),
    ToolCallDelta(3, "{}"),
    BlockStop(3),
    UsageEvent(USAGE),
    MessageStop(StopReason.TOOL_USE),
]


def _chunks(wire: bytes) -> list[Any]:
    out = []
    for block in wire.split(b"\n\n"):
        if block.startswith(b"data: ") and block != b"data: [DONE]":
            out.append(orjson.loads(block[6:]))
    return out


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_completion_chunks(include_usage: bool) -> None:
    renderer = openai_chat.make_renderer("m", include_usage=include_usage)
    chunks = _chunks(b"".join(renderer.feed(e) for e in EVENTS))
    assert len(chunks) >= 8
    assert any(not c["choices"] for c in chunks) is include_usage
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)


def test_error_object() -> None:
    for kind in ErrorKind:
        body = orjson.loads(openai_chat.render_error(GatewayError(kind, "x", param="p")))
        assert_valid("ErrorResponse", body)


def test_model_list() -> None:
    from relaygate.canonical import ModelInfo

    body = orjson.loads(
        openai_chat.render_models([ModelInfo(id="p/m", native_id="m", backend="p", owned_by="p")])
    )
    assert_valid("ListModelsResponse", body)


def test_validation_is_not_vacuous() -> None:
    chunk = _chunks(openai_chat.make_renderer("m").feed(MessageStart(id="chatcmpl-1", model="m")))[
        0
    ]
    assert_valid("CreateChatCompletionStreamResponse", chunk)
    for broken in (
        {k: v for k, v in chunk.items() if k != "id"},
        {**chunk, "object": "chat.completion"},
        {**chunk, "choices": [{**chunk["choices"][0], "finish_reason": "finished"}]},
    ):
        assert not validator("CreateChatCompletionStreamResponse").is_valid(broken)
