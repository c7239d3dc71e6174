"""Every subsystem section of relaygate.yaml is validated by ``gateway.validate``: ``check-config``
exits 1 with one line per problem (field + fix) and ``serve`` refuses with the same lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from relaygate.cli import app

runner = CliRunner()

BACKEND = {
    "id": "p1",
    "kind": "custom-openai-legacy-compatible",
    "config": {
        "backend_prefix": "p1",
        "base_url": "https://api.example.com/v1",
        "api_key": "sk-abcdefgh",
    },
}


def run(tmp_path: Path, command: str, section: dict[str, Any]) -> tuple[int, list[str]]:
    path = tmp_path / "relaygate.yaml"
    path.write_text(yaml.safe_dump({"plugins": {"backends": [BACKEND]}, **section}))
    args = [command, "--config", str(path)]
    if command == "serve":
        args += ["--port", "1"]  # never reached: the config is refused first
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"limits": {"default_key": {"rpm": 0}}}, ["limits.default_key.rpm", "fix the value"]),
    ({"limits": {"backends": {"nope": {"rpm": 5}}}}, ["limits.backends.nope", "use one of: p1"]),
    ({"limits": {"per_key": {}}}, ["limits.per_key: unknown field", "remove it"]),
    ({"prices": {"models": {"m": {"input": -1, "output": 1}}}}, ["prices.models.m.input"]),
    ({"prices": {"models": {"m": {"input": 1}}}}, ["prices.models.m.output", "add it"]),
    ({"security": {"allow_private": "sometimes"}}, ["security.allow_private", "fix the value"]),
    ({"security": {"allow_hosts": ["http://x.example"]}}, ["security.allow_hosts[0]", "bare host"]),
    ({"security": {"allow_host": ["x"]}}, ["security.allow_host: unknown field"]),
    ({"responses": {"store": "redis"}}, ["responses.store", "'memory' or 'sqlite'"]),
    ({"responses": {"ttl_seconds": 0}}, ["responses.ttl_seconds"]),
    ({"health": {"interval": -1}}, ["health.interval"]),
    ({"breaker": {"failure_threshold": 0}}, ["breaker.failure_threshold"]),
    ({"tracing": {"exporter": "jaeger"}}, ["tracing.exporter", "fix the value"]),
    (
        {"tracing": {"enabled": True, "endpoint": "http://x"}},
        ["tracing.endpoint", "exporter: otlp"],
    ),
]


@pytest.mark.parametrize(("section", "expected"), CASES)
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_section_problem_is_one_line(
    tmp_path: Path, command: str, section: dict[str, Any], expected: list[str]
) -> None:
    code, lines = run(tmp_path, command, section)
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("✗")
    for part in expected:
        assert part in lines[0], lines
    assert "Traceback" not in "\n".join(lines)


def test_serve_and_check_config_print_the_same_lines(tmp_path: Path) -> None:
    bad = {
        "limits": {"default_key": {"tpm": -5}},
        "prices": {"defaults": "maybe"},
        "responses": {"max_entries": 0},
        "security": {"allow_hosts": "x"},
    }
    code_check, check_lines = run(tmp_path, "check-config", bad)
    code_serve, serve_lines = run(tmp_path, "serve", bad)
    assert code_check == code_serve == 1
    assert check_lines == serve_lines
    assert [line.split(":")[0].lstrip("✗ ") for line in check_lines] == [
        "limits.default_key.tpm",
        "prices.defaults",
        "security.allow_hosts",
        "responses.max_entries",
    ]


def test_valid_sections_pass(tmp_path: Path) -> None:
    good = {
        "limits": {"default_key": {"rpm": 60}, "backends": {"p1": {"tpm": 1000}}},
        "prices": {"defaults": False, "models": {"m": {"input": 1, "output": 2}}},
        "security": {"allow_hosts": ["metadata.internal"], "allow_private": False},
        "responses": {"store": "sqlite", "path": str(tmp_path / "r.db")},
        "health": {"probes": True},
        "breaker": {"failure_threshold": 3},
        "tracing": {"enabled": False},
    }
    code, lines = run(tmp_path, "check-config", good)
    assert code == 0, lines


def test_tracing_without_the_sdk_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relaygate.server import tracing

    monkeypatch.setattr(tracing, "_installed", lambda module: False)
    code, lines = run(tmp_path, "check-config", {"tracing": {"enabled": True}})
    assert code == 1
    assert lines == [
        "✗ tracing.enabled: needs opentelemetry-sdk, which is not installed — pip install "
        "'relaygate[otel]' or set tracing.enabled: false"
    ]
