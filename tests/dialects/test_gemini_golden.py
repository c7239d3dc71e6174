"""Golden files for the Gemini dialect: ``tests/golden/gemini/<function>/<case>.in.*`` is fed to
the function, the result is compared exactly with ``<case>.out.*``.

Set ``RELAYGATE_UPDATE_GOLDEN=1`` to (re)write the ``.out`` files, then review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from google.genai import types

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
)
from relaygate.dialects import gemini
from relaygate.dialects.sse import SSEDecoder

GOLDEN = Path(__file__).parent.parent / "golden" / "gemini"
UPDATE = os.environ.get("RELAYGATE_UPDATE_GOLDEN") == "1"


# ----------------------------------------------------------------------------- canonical <-> JSON


def to_json(obj: Any) -> Any:
    if isinstance(obj, GatewayError):
        return {
            "kind": obj.kind.value,
            "message": obj.message,
            "status": obj.status,
            "param": obj.param,
            "code": obj.code,
            "retry_after": obj.retry_after,
            "upstream_status": obj.upstream_status,
        }
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, list):
        return [to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    return obj


_PARTS: dict[str, type[Any]] = {
    "text": TextPart,
    "image": ImagePart,
    "document": DocumentPart,
    "tool_call": ToolCallPart,
    "tool_result": ToolResultPart,
    "thinking": ThinkingPart,
}


def part_from(d: dict[str, Any]) -> ContentPart:
    kwargs = dict(d)
    cls = _PARTS[kwargs.pop("type")]
    if cls is ToolResultPart:
        kwargs["content"] = [part_from(x) for x in kwargs["content"]]
    part: ContentPart = cls(**kwargs)
    return part


def error_from(d: dict[str, Any]) -> GatewayError:
    kwargs = dict(d)
    kind = ErrorKind(kwargs.pop("kind"))
    message = kwargs.pop("message")
    return GatewayError(kind, message, **kwargs)


def request_from(d: dict[str, Any]) -> Request:
    kwargs = dict(d)
    kwargs["messages"] = [
        Message(Role(m["role"]), [part_from(p) for p in m["content"]], m.get("name"))
        for m in kwargs["messages"]
    ]
    kwargs["system"] = [TextPart(**p) for p in kwargs.get("system", [])]
    kwargs["tools"] = [ToolSpec(**t) for t in kwargs.get("tools", [])]
    for key, cls in (
        ("tool_choice", ToolChoice),
        ("response_format", ResponseFormat),
        ("thinking", ThinkingConfig),
    ):
        if kwargs.get(key) is not None:
            kwargs[key] = cls(**kwargs[key])
    return Request(**kwargs)


def response_from(d: dict[str, Any]) -> Response:
    kwargs = dict(d)
    kwargs["content"] = [part_from(p) for p in kwargs["content"]]
    kwargs["stop_reason"] = StopReason(kwargs.get("stop_reason", "end_turn"))
    kwargs["usage"] = Usage(**kwargs.get("usage", {}))
    return Response(**kwargs)


_EVENTS: dict[str, type[Any]] = {
    "message_start": MessageStart,
    "text_start": TextStart,
    "text_delta": TextDelta,
    "thinking_start": ThinkingStart,
    "thinking_delta": ThinkingDelta,
    "tool_call_start": ToolCallStart,
    "tool_call_delta": ToolCallDelta,
    "block_stop": BlockStop,
    "usage": UsageEvent,
    "message_stop": MessageStop,
    "error": ErrorEvent,
}


def event_from(d: dict[str, Any]) -> StreamEvent:
    kwargs = dict(d)
    cls = _EVENTS[kwargs.pop("kind")]
    if kwargs.get("usage") is not None:
        kwargs["usage"] = Usage(**kwargs["usage"])
    if "stop_reason" in kwargs:
        kwargs["stop_reason"] = StopReason(kwargs["stop_reason"])
    if cls is ErrorEvent:
        kwargs["error"] = error_from(kwargs["error"])
    event: StreamEvent = cls(**kwargs)
    return event


# ----------------------------------------------------------------------------- file helpers


def cases(function: str, ext: str = ".in.json") -> list[str]:
    return sorted(p.name[: -len(ext)] for p in (GOLDEN / function).glob(f"*{ext}"))


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def check_json(path: Path, actual: Any) -> None:
    text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
    if UPDATE:
        path.write_text(text)
    assert actual == load(path), f"{path} differs"


def check_bytes(path: Path, actual: bytes) -> None:
    if UPDATE:
        path.write_bytes(actual)
    assert actual == path.read_bytes(), f"{path} differs"


def validate_sdk(body: Any) -> None:
    """Whatever we render for Gemini clients must load into google-genai's own type (its models
    forbid unknown fields and decode ``thoughtSignature`` as base64 in JSON mode)."""
    types.GenerateContentResponse.model_validate_json(json.dumps(body))


def validate_request_sdk(body: dict[str, Any]) -> None:
    """Each piece of a built request body loads into the google-genai type of that field."""
    checks: dict[str, Any] = {
        "systemInstruction": types.Content,
        "toolConfig": types.ToolConfig,
        "generationConfig": types.GenerationConfig,
    }
    for content in body["contents"]:
        types.Content.model_validate_json(json.dumps(content))
    for tool in body.get("tools", []):
        types.Tool.model_validate_json(json.dumps(tool))
    for setting in body.get("safetySettings", []):
        types.SafetySetting.model_validate_json(json.dumps(setting))
    for key, model in checks.items():
        if key in body:
            model.model_validate_json(json.dumps(body[key]))
    known = {"contents", "tools", "safetySettings", "cachedContent", *checks}
    assert set(body) <= known, set(body) - known


# ----------------------------------------------------------------------------- client side


@pytest.mark.parametrize("case", cases("parse_request"))
def test_parse_request(case: str) -> None:
    body = load(GOLDEN / "parse_request" / f"{case}.in.json")
    request = gemini.parse_request(body)
    check_json(GOLDEN / "parse_request" / f"{case}.out.json", to_json(request))


@pytest.mark.parametrize("case", cases("render_response"))
def test_render_response(case: str) -> None:
    response = response_from(load(GOLDEN / "render_response" / f"{case}.in.json"))
    body = json.loads(gemini.render_response(response))
    validate_sdk(body)
    check_json(GOLDEN / "render_response" / f"{case}.out.json", body)


@pytest.mark.parametrize("case", cases("render_stream"))
def test_render_stream(case: str) -> None:
    spec = load(GOLDEN / "render_stream" / f"{case}.in.json")
    sse = not case.startswith("array_")
    renderer = gemini.make_renderer(spec["model"], sse=sse)
    out = b"".join(renderer.feed(event_from(e)) for e in spec["events"])
    if sse:
        for event in SSEDecoder().feed(out):
            chunk = json.loads(event.data)
            if "error" not in chunk:
                validate_sdk(chunk)
        check_bytes(GOLDEN / "render_stream" / f"{case}.out.sse", out)
    else:
        for chunk in json.loads(out):  # once complete, the array is plain JSON
            validate_sdk(chunk)
        check_bytes(GOLDEN / "render_stream" / f"{case}.out.json", out)


def test_render_errors() -> None:
    specs = load(GOLDEN / "errors" / "render_error.in.json")
    rendered = [
        {"http_status": (err := error_from(s)).status, "body": json.loads(gemini.render_error(err))}
        for s in specs
    ]
    check_json(GOLDEN / "errors" / "render_error.out.json", rendered)


# ----------------------------------------------------------------------------- upstream side


@pytest.mark.parametrize("case", cases("build_request"))
def test_build_request(case: str) -> None:
    request = request_from(load(GOLDEN / "build_request" / f"{case}.in.json"))
    body = gemini.build_request(request, "gemini-2.5-flash")
    validate_request_sdk(body)
    check_json(GOLDEN / "build_request" / f"{case}.out.json", body)


@pytest.mark.parametrize("case", cases("parse_response"))
def test_parse_response(case: str) -> None:
    body = load(GOLDEN / "parse_response" / f"{case}.in.json")
    validate_sdk(body)  # the inputs are real Gemini shapes
    check_json(GOLDEN / "parse_response" / f"{case}.out.json", to_json(gemini.parse_response(body)))


@pytest.mark.parametrize("case", cases("parse_stream", ".in.sse"))
def test_parse_stream(case: str) -> None:
    raw = (GOLDEN / "parse_stream" / f"{case}.in.sse").read_bytes()
    parser = gemini.make_parser()
    decoder = SSEDecoder()
    events: list[StreamEvent] = []
    # Feed in awkward 7-byte pieces: SSE framing must not depend on network chunking.
    for i in range(0, len(raw), 7):
        for sse_event in decoder.feed(raw[i : i + 7]):
            events.extend(parser.feed(sse_event))
    for sse_event in decoder.flush():
        events.extend(parser.feed(sse_event))
    events.extend(parser.finish())
    check_json(GOLDEN / "parse_stream" / f"{case}.out.json", to_json(events))


@pytest.mark.parametrize("case", cases("parse_stream", ".in.sse"))
def test_watch_agrees_with_parser(case: str) -> None:
    """The fast-path watch sees the same usage and completeness as the full parser."""
    raw = (GOLDEN / "parse_stream" / f"{case}.in.sse").read_bytes()
    watch = gemini.make_watch()
    for i in range(0, len(raw), 5):
        watch.feed(raw[i : i + 5])
    parser = gemini.make_parser()
    events = [e for ev in SSEDecoder().feed(raw) for e in parser.feed(ev)] + parser.finish()
    assert watch.complete == isinstance(events[-1], MessageStop)
    usage = [e.usage for e in events if isinstance(e, UsageEvent)]
    if usage:
        assert watch.usage == usage[-1]


def test_parse_errors() -> None:
    specs = load(GOLDEN / "errors" / "parse_error.in.json")
    results = []
    for spec in specs:
        body = spec["raw"].encode() if "raw" in spec else json.dumps(spec["body"]).encode()
        results.append(to_json(gemini.parse_error(spec["status"], body)))
    check_json(GOLDEN / "errors" / "parse_error.out.json", results)
    assert all("AIza" not in r["message"] for r in results)
