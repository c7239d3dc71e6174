"""``relaygate check-config`` fed hypothesis mutations of ``relaygate.yaml.example`` (wrong types,
unknown keys, missing fields, odd unicode, free-form sections of any shape): it exits 0 or 1,
never with a traceback, and every problem line names a field path."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from relaygate.cli import app

EXAMPLE = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "relaygate.yaml.example").read_text()
)
# Sections the example leaves out, owned by subsystems that validate them themselves.
FREE_FORM = ("limits", "prices", "security", "breaker", "health", "responses", "tracing")
TOP = {*EXAMPLE, *FREE_FORM, "default_model"}
# Where a problem is not a field of the document.
PSEUDO = ("(top level)", "--config", "line ")
PROBLEM = re.compile(r"^✗ (?P<where>.+?): ")
runner = CliRunner()

odd_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["", "${UNSET_FUZZ_VAR}", "${X:-}", "ü/ñ:名", "\u202e", "a\tb", "-1", "~"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | odd_text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


@st.composite
def documents(draw: st.DrawFn) -> Any:
    doc: Any = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        if not isinstance(doc, dict):
            break
        op = draw(st.sampled_from(["replace", "delete", "extra", "rename", "section"]))
        if op == "section":
            doc[draw(st.sampled_from(FREE_FORM))] = draw(values)
            continue
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            if op == "replace":
                doc = draw(values)
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if op == "delete":
            del parent[last]
        elif op == "extra" and isinstance(parent[last], dict):
            parent[last][draw(odd_text)] = draw(values)
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(odd_text)] = parent.pop(last)
        else:
            parent[last] = draw(values)
    return doc


def check_config(tmp_path: Path, text: str, doc: Any = None) -> list[str]:
    path = tmp_path / "relaygate.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["check-config", "--config", str(path)])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output, result.output
    problems = [line for line in result.output.split("\n") if line.startswith("✗")]
    assert bool(problems) == (result.exit_code == 1), result.output
    for line in problems:
        match = PROBLEM.match(line)
        assert match, line
        where = match["where"]
        # A known section, or an unknown top-level key named as written.
        keys = [str(k) for k in (doc if isinstance(doc, dict) else ())]
        roots = {*TOP, *(k for k in keys if k), *(json.dumps(k) for k in keys)}
        assert where.startswith(PSEUDO) or any(where.startswith(r) for r in roots), line
    return problems


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("config"))


def test_the_example_is_valid(workdir: Path) -> None:
    assert check_config(workdir, yaml.safe_dump(EXAMPLE)) == []


@settings(
    max_examples=int(os.environ.get("RELAYGATE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=documents())
@example(doc=[1, 2])
@example(doc={**EXAMPLE, "routes": [{"name": "x", "targets": "not-a-list"}]})
@example(doc={**EXAMPLE, "plugins": {"backends": [{"id": "x", "kind": "no-such-kind"}]}})
@example(doc={**EXAMPLE, "": 1})  # an empty key was reported as "✗ : unknown field"
@example(doc={**EXAMPLE, "\u200b": 1, " ": 2})
def test_mutated_configs(workdir: Path, doc: Any) -> None:
    check_config(workdir, yaml.safe_dump(doc, allow_unicode=True), doc)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=200))
@example(text="server: [unclosed")
@example(text="\ufeffserver: {port: 1}")
@example(text="- a\n- b\n")
@example(text="?")  # {None: None}: a non-string key was reported at "None"
@example(text="server:\n  1: x")
@example(text="server:\n  host: \x1f")  # a reader error was reported at "file", not a line
def test_arbitrary_text(workdir: Path, text: str) -> None:
    check_config(workdir, text)
