"""Golden files for the openai-responses dialect: each input next to its exact expected output.

Layout under ``tests/golden/openai_responses/``::

    parse_request/<case>.json            → <case>.expected.json   (canonical Request)
    build_request/<case>.canonical.json  → <case>.expected.json   (upstream body)
    build_request/<case>.client.json     → <case>.expected.json   (client body, parsed then built)
    parse_response/<case>.json           → <case>.expected.json   (canonical Response)
    render_response/<case>.canonical.json→ <case>.expected.json   (Response object)
    parse_stream/<case>.sse              → <case>.expected.json   (canonical events)
    render_stream/<case>.events.json     → <case>.expected.sse    (client SSE)
    errors/parse_error.json, errors/render_error.json, models/models.json

Run with ``RELAYGATE_REGEN_GOLDEN=1`` to rewrite the expected files (then review the diff).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import pytest

import relaygate.canonical as c
from relaygate.dialects import openai_responses as d
from relaygate.dialects.sse import SSEDecoder

GOLDEN = Path(__file__).parent.parent / "golden" / "openai_responses"
REGEN = os.environ.get("RELAYGATE_REGEN_GOLDEN") == "1"

# --------------------------------------------------------------------------- canonical ⇄ JSON


def _by_tag(classes: tuple[type[Any], ...], tag: str) -> dict[str, type[Any]]:
    return {f.default: cls for cls in classes for f in dataclasses.fields(cls) if f.name == tag}


_PARTS = _by_tag(typing.get_args(c.ContentPart), "type")
_EVENTS = _by_tag(typing.get_args(c.StreamEvent), "kind")


def to_json(obj: Any) -> Any:
    """A canonical value as plain JSON; fields left at their default are omitted."""
    if isinstance(obj, c.GatewayError):
        return {
            "kind": obj.kind.value,
            "message": obj.message,
            "status": obj.status,
            "param": obj.param,
            "code": obj.code,
            "upstream_status": obj.upstream_status,
        }
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name in ("type", "kind"):
                out[f.name] = value
                continue
            default = (
                f.default
                if f.default is not dataclasses.MISSING
                else (
                    f.default_factory()
                    if f.default_factory is not dataclasses.MISSING
                    else dataclasses.MISSING
                )
            )
            if value != default:
                out[f.name] = to_json(value)
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, list):
        return [to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    return obj


def from_json(hint: Any, data: Any) -> Any:
    """Rebuild a canonical value of type ``hint`` from :func:`to_json` output."""
    if data is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if isinstance(data, dict) and any(a in _PARTS.values() for a in args):
            return from_json(_PARTS[data["type"]], data)
        if isinstance(data, dict) and any(a in _EVENTS.values() for a in args):
            return from_json(_EVENTS[data["kind"]], data)
        return from_json(args[0], data)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [from_json(item, x) for x in data]
    if origin is dict:
        return dict(data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if hint is c.GatewayError:
        return c.GatewayError(
            c.ErrorKind(data["kind"]),
            data["message"],
            status=data.get("status"),
            param=data.get("param"),
            code=data.get("code"),
        )
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint, vars(c))
        tagged = hint in _PARTS.values() or hint in _EVENTS.values()
        kwargs = {
            k: from_json(hints[k], v)
            for k, v in data.items()
            if not (tagged and k in ("type", "kind"))
        }
        return hint(**kwargs)
    return data


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _check_json(actual: Any, expected_path: Path) -> None:
    if REGEN:
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    assert actual == _load(expected_path)


def _check_bytes(actual: bytes, expected_path: Path) -> None:
    if REGEN:
        expected_path.write_bytes(actual)
    assert actual == expected_path.read_bytes()


def _cases(folder: str, suffix: str) -> list[Path]:
    return sorted((GOLDEN / folder).glob(f"*{suffix}"))


def _expected(path: Path, suffix: str, ext: str = ".expected.json") -> Path:
    return path.with_name(path.name.removesuffix(suffix) + ext)


# --------------------------------------------------------------------------- client side


@pytest.mark.parametrize(
    "path",
    [p for p in _cases("parse_request", ".json") if not p.name.endswith(".expected.json")],
    ids=lambda p: p.stem,
)
def test_parse_request(path: Path) -> None:
    req = d.parse_request(_load(path))
    _check_json(to_json(req), _expected(path, ".json"))
    # the golden canonical file is itself a faithful description of the Request
    assert from_json(c.Request, to_json(req)) == req


@pytest.mark.parametrize("path", _cases("render_response", ".canonical.json"), ids=lambda p: p.stem)
def test_render_response(path: Path) -> None:
    from openai.types.responses import Response as SDKResponse

    response = from_json(c.Response, _load(path))
    raw = d.render_response(response)
    SDKResponse.model_validate_json(raw)
    _check_json(json.loads(raw), _expected(path, ".canonical.json"))


@pytest.mark.parametrize("path", _cases("render_stream", ".events.json"), ids=lambda p: p.stem)
def test_render_stream(path: Path) -> None:
    spec = _load(path)
    renderer = d.make_renderer(spec["model"])
    out = b"".join(renderer.feed(from_json(c.StreamEvent, e)) for e in spec["events"])
    if "error" in spec:
        out += renderer.error(from_json(c.GatewayError, spec["error"]))
    _check_bytes(out, _expected(path, ".events.json", ".expected.sse"))
    sdk_accepts_stream(out)


def sdk_accepts_stream(raw: bytes) -> Any:
    """Feed rendered SSE through the openai SDK's event types and its ``responses.stream()``
    accumulator; returns the final response (None when the stream failed)."""
    from openai._types import omit
    from openai.lib.streaming.responses._responses import ResponseStreamState
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    seqs = []
    for sse in SSEDecoder().feed(raw):
        event = adapter.validate_json(sse.data)
        assert sse.event == event.type
        seqs.append(event.sequence_number)
        state.handle_event(event)
    assert seqs == list(range(len(seqs)))
    return state._completed_response


# --------------------------------------------------------------------------- upstream side


@pytest.mark.parametrize("path", _cases("build_request", ".canonical.json"), ids=lambda p: p.stem)
def test_build_request(path: Path) -> None:
    spec = _load(path)
    body = d.build_request(from_json(c.Request, spec["request"]), spec["native_model"])
    _check_json(body, _expected(path, ".canonical.json"))


@pytest.mark.parametrize("path", _cases("build_request", ".client.json"), ids=lambda p: p.stem)
def test_build_request_same_dialect(path: Path) -> None:
    body = d.build_request(d.parse_request(_load(path)), "gpt-5-upstream")
    _check_json(body, _expected(path, ".client.json"))


@pytest.mark.parametrize(
    "path",
    [p for p in _cases("parse_response", ".json") if not p.name.endswith(".expected.json")],
    ids=lambda p: p.stem,
)
def test_parse_response(path: Path) -> None:
    _check_json(to_json(d.parse_response(_load(path))), _expected(path, ".json"))


@pytest.mark.parametrize("path", _cases("parse_stream", ".sse"), ids=lambda p: p.stem)
def test_parse_stream(path: Path) -> None:
    raw = path.read_bytes()
    parser = d.make_parser()
    decoder = SSEDecoder()
    events: list[c.StreamEvent] = []
    # odd chunk sizes: events straddle reads as they do on a socket
    for i in range(0, len(raw), 37):
        for sse in decoder.feed(raw[i : i + 37]):
            events.extend(parser.feed(sse))
    for sse in decoder.flush():
        events.extend(parser.feed(sse))
    tail = parser.finish()
    events.extend(tail)
    _check_json([to_json(e) for e in events], _expected(path, ".sse"))

    # the byte watch agrees with the parser on usage and on whether a terminal event came
    watch = d.make_watch()
    for i in range(0, len(raw), 11):
        watch.feed(raw[i : i + 11])
    usage = [e.usage for e in events if isinstance(e, c.UsageEvent)]
    assert watch.usage == (usage[-1] if usage else c.Usage())
    errors = [e.error for e in events if isinstance(e, c.ErrorEvent)]
    if errors and not tail:  # the upstream's own failed/error terminal: an end, no success
        assert not watch.complete
        assert watch.error is not None and watch.error.message == errors[-1].message
    else:
        assert watch.complete is (not tail) and watch.error is None


# --------------------------------------------------------------------------- errors and models


def test_parse_error_golden() -> None:
    cases = _load(GOLDEN / "errors" / "parse_error.json")
    actual = [to_json(d.parse_error(case["status"], case["body"].encode())) for case in cases]
    _check_json(actual, GOLDEN / "errors" / "parse_error.expected.json")
    for err in actual:
        assert "abcdef1234567890" not in err["message"] and "AIzaSy" not in err["message"]


def test_render_error_golden() -> None:
    errors = [
        c.invalid("Missing required parameter: 'model'.", "model"),
        c.GatewayError(c.ErrorKind.AUTHENTICATION, "invalid relaygate key"),
        c.GatewayError(c.ErrorKind.RATE_LIMIT, "slow down", retry_after=2),
        c.GatewayError(c.ErrorKind.BUDGET, "budget exhausted"),
        c.GatewayError(c.ErrorKind.UPSTREAM, "upstream failed", code="upstream_error"),
        c.GatewayError(c.ErrorKind.LOOP, "loop detected"),
    ]
    actual = [{"status": e.status, "body": json.loads(d.render_error(e))} for e in errors]
    _check_json(actual, GOLDEN / "errors" / "render_error.expected.json")


def test_render_models_golden() -> None:
    models = [
        c.ModelInfo(
            id="openai/gpt-5",
            native_id="gpt-5",
            backend="openai",
            owned_by="openai",
            created=1754000000,
        ),
        c.ModelInfo(id="local/gemma", native_id="gemma", backend="local"),
    ]
    _check_json(json.loads(d.render_models(models)), GOLDEN / "models" / "models.expected.json")
