"""Golden files for the Anthropic dialect: ``tests/golden/anthropic/<side>/<case>``.

Each JSON case is ``{"input": …, "expected": …}``; streams keep their SSE in ``.sse`` files.
Canonical values are written as JSON with default-valued fields left out (see ``to_jsonable``).
Set ``RG_REGEN_GOLDEN=1`` to rewrite the expected halves — then review the diff by hand.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from pathlib import Path
from typing import Any, Union

import orjson
import pytest

from relaygate import canonical as c
from relaygate.dialects import anthropic as a
from relaygate.dialects.sse import SSEDecoder

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "anthropic"
REGEN = os.environ.get("RG_REGEN_GOLDEN") == "1"


# --------------------------------------------------------------------------- canonical <-> JSON


def to_jsonable(value: Any) -> Any:
    if isinstance(value, c.GatewayError):
        out = {"kind": value.kind.value, "message": value.message, "status": value.status}
        for name in ("param", "code", "upstream_status", "retry_after"):
            if getattr(value, name) is not None:
                out[name] = getattr(value, name)
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.name in ("type", "kind"):
                out[f.name] = v
                continue
            if f.default is not dataclasses.MISSING and v == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and v == f.default_factory():
                continue
            out[f.name] = to_jsonable(v)
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


_PARTS = {cls.__dataclass_fields__["type"].default: cls for cls in typing.get_args(c.ContentPart)}
_EVENTS = {cls.__dataclass_fields__["kind"].default: cls for cls in typing.get_args(c.StreamEvent)}


def from_jsonable(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if value is None:
        return None
    if origin in (Union, types.UnionType):
        args = [t for t in typing.get_args(hint) if t is not type(None)]
        if all(t in _PARTS.values() for t in args):
            return from_jsonable(_PARTS[value["type"]], value)
        if all(t in _EVENTS.values() for t in args):
            return from_jsonable(_EVENTS[value["kind"]], value)
        return from_jsonable(args[0], value)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [from_jsonable(item, v) for v in value]
    if origin is dict or hint is Any or origin is typing.Literal:
        return value
    if hint is c.GatewayError:
        value = dict(value)
        kind = c.ErrorKind(value.pop("kind"))
        return c.GatewayError(kind, value.pop("message"), **value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint, vars(c))
        return hint(**{k: from_jsonable(hints[k], v) for k, v in value.items()})
    return value


def load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def check_json(path: Path, actual: Any) -> None:
    data = load(path)
    if REGEN:
        data["expected"] = actual
        path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    assert actual == data["expected"]


def cases(side: str, ext: str = "json") -> list[Path]:
    return sorted((GOLDEN / side).glob(f"*.{ext}"))


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


# --------------------------------------------------------------------------- client side


@pytest.mark.parametrize("path", cases("parse_request"), ids=ids(cases("parse_request")))
def test_parse_request(path: Path) -> None:
    request = a.parse_request(load(path)["input"])
    check_json(path, to_jsonable(request))


@pytest.mark.parametrize("path", cases("render_response"), ids=ids(cases("render_response")))
def test_render_response(path: Path) -> None:
    response = from_jsonable(c.Response, load(path)["input"])
    check_json(path, orjson.loads(a.render_response(response)))


@pytest.mark.parametrize("path", cases("render_stream"), ids=ids(cases("render_stream")))
def test_render_stream(path: Path) -> None:
    data = load(path)
    renderer = a.make_renderer(data["model"])
    out = b"".join(renderer.feed(from_jsonable(c.StreamEvent, e)) for e in data["input"])
    sse = path.with_suffix(".sse")
    if REGEN:
        sse.write_bytes(out)
    assert out.decode() == sse.read_text()


# --------------------------------------------------------------------------- upstream side


@pytest.mark.parametrize("path", cases("build_request"), ids=ids(cases("build_request")))
def test_build_request(path: Path) -> None:
    data = load(path)
    request = from_jsonable(c.Request, data["input"])
    check_json(path, a.build_request(request, data.get("native_model", "claude-sonnet-4-5")))


@pytest.mark.parametrize("path", cases("parse_response"), ids=ids(cases("parse_response")))
def test_parse_response(path: Path) -> None:
    check_json(path, to_jsonable(a.parse_response(load(path)["input"])))


@pytest.mark.parametrize(
    "path", cases("parse_stream", "sse"), ids=ids(cases("parse_stream", "sse"))
)
def test_parse_stream(path: Path) -> None:
    raw = path.read_bytes()
    decoder, parser = SSEDecoder(), a.make_parser()
    events: list[c.StreamEvent] = []
    # Feed in awkward slices: the decoder and parser must not care where chunks split.
    for i in range(0, len(raw), 37):
        for sse in decoder.feed(raw[i : i + 37]):
            events.extend(parser.feed(sse))
    for sse in decoder.flush():
        events.extend(parser.feed(sse))
    events.extend(parser.finish())
    actual = to_jsonable(events)
    expected_path = path.with_suffix(".json")
    if REGEN:
        expected_path.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2) + b"\n")
    assert actual == load(expected_path)

    # The same bytes through the cheap watcher agree on usage and completion.
    watch = a.make_watch()
    for i in range(0, len(raw), 53):
        watch.feed(raw[i : i + 53])
    usage = [e.usage for e in events if isinstance(e, c.UsageEvent)]
    if usage:
        assert watch.usage == usage[-1]
    assert watch.complete == any(isinstance(e, c.MessageStop) for e in events)


@pytest.mark.parametrize("path", cases("errors"), ids=ids(cases("errors")))
def test_parse_error(path: Path) -> None:
    data = load(path)
    body = data["input"]["body"]
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    err = a.parse_error(data["input"]["status"], raw)
    check_json(path, {"error": to_jsonable(err), "rendered": orjson.loads(a.render_error(err))})
