"""``relaygate check-config``: exit codes and one line per problem, naming the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from relaygate.cli import app
from relaygate.config import ConfigError, parse_config

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def check(tmp_path: Path, doc: dict[str, Any] | str) -> tuple[int, list[str]]:
    path = tmp_path / "relaygate.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    result = runner.invoke(app, ["check-config", "--config", str(path)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    return result.exit_code, lines


def backend(**config: Any) -> dict[str, Any]:
    base = {
        "backend_prefix": "p1",
        "base_url": "https://api.example.com/v1",
        "api_key": "sk-abcdefgh",
    }
    return {
        "id": config.pop("id", "p1"),
        "kind": config.pop("kind", "custom-openai-legacy-compatible"),
        "config": {**base, **config},
    }


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RELAYGATE_API_KEY", "P1_KEY", "P1_KEY_2", "RG_HOST", "UNSET_THING"):
        monkeypatch.delenv(name, raising=False)


def test_example_config_is_valid(tmp_path: Path) -> None:
    code, lines = check(tmp_path, (REPO / "relaygate.yaml.example").read_text())
    assert code == 0, lines
    assert "is valid" in lines[-1]


def test_valid_minimal(tmp_path: Path) -> None:
    code, lines = check(tmp_path, {"plugins": {"backends": [backend()]}})
    assert code == 0, lines


def test_empty_file_is_valid(tmp_path: Path) -> None:
    assert check(tmp_path, "")[0] == 0


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"plugins": {"backends": [backend(backend_prefix="a/b")]}},
            ["plugins.backends[0] (p1).config.backend_prefix", "must not contain '/' or ':'"],
        ),
        (
            {"plugins": {"backends": [backend(backend_prefix="openai")]}},
            ["plugins.backends[0] (p1).config.backend_prefix", "reserved", "choose another prefix"],
        ),
        (
            {"plugins": {"backends": [backend(), backend(id="p2")]}},
            [
                "plugins.backends[1] (p2).config.backend_prefix",
                "'p1' is already used by backend 'p1'",
            ],
        ),
        (
            {"plugins": {"backends": [backend(), backend()]}},
            ["plugins.backends[1] (p1).id", "duplicate backend id"],
        ),
        (
            {"plugins": {"backends": [backend(kind="no-such-kind")]}},
            [
                "plugins.backends[0] (p1).kind",
                "unknown kind 'no-such-kind'",
                "custom-openai-legacy-compatible",
            ],
        ),
        (
            {"plugins": {"backends": [backend(base_url=None)]}},
            ["plugins.backends[0] (p1).config.base_url", "required", "https://"],
        ),
        (
            {"plugins": {"backends": [backend(api_key=None, api_key_env_var_root="P1_KEY")]}},
            ["config.api_key_env_var_root", "P1_KEY is not set", "export P1_KEY="],
        ),
        (
            {"plugins": {"backends": [backend(api_kye="typo")]}},
            ["plugins.backends[0] (p1).config.api_kye", "unknown field", "remove it"],
        ),
        (
            {"server": {"prot": 8080}},
            ["server.prot", "unknown field"],
        ),
        (
            {"server": {"port": "eighty"}},
            ["server.port", "fix the value"],
        ),
        (
            {"server": {"auth": {"enabled": True}}},
            ["server.auth.api_key_env", "RELAYGATE_API_KEY is not set", "enabled: false"],
        ),
        (
            {"server": {"host": "${UNSET_THING}"}},
            [
                "server.host",
                "environment variable UNSET_THING is not set",
                "${UNSET_THING:-default}",
            ],
        ),
        (
            {
                "plugins": {"backends": [backend()]},
                "routes": [{"name": "r", "targets": ["zz/model"]}],
            },
            ["routes[0] (r).targets[0]", "'zz/model' names no configured backend", "p1"],
        ),
        (
            {"plugins": {"backends": [backend()]}, "routes": [{"name": "r", "targets": []}]},
            ["routes[0] (r).targets", "at least one model"],
        ),
        (
            {
                "plugins": {"backends": [backend()]},
                "routes": [{"name": "r", "strategy": "yolo", "targets": ["p1/m"]}],
            },
            ["routes[0] (r).strategy"],
        ),
        (
            {
                "plugins": {"backends": [backend()]},
                "routes": [{"name": "r", "targets": ["p1/a", "p1/b"], "weights": [1]}],
            },
            ["routes[0] (r).weights", "one weight per target"],
        ),
        (
            {"plugins": {"backends": [backend()]}, "aliases": {"fast": "nowhere/x"}},
            ["aliases.fast", "names no configured backend or route"],
        ),
        (
            {
                "plugins": {
                    "backends": [backend(models={"source": "file", "path": "/nonexistent/m.yaml"})]
                }
            },
            ["config.models.path", "/nonexistent/m.yaml does not exist"],
        ),
    ],
)
def test_problems(tmp_path: Path, doc: dict[str, Any], expected: list[str]) -> None:
    code, lines = check(tmp_path, doc)
    assert code == 1
    matching = [line for line in lines if all(part in line for part in expected)]
    assert len(matching) == 1, lines


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    doc = {
        "plugins": {"backends": [backend(kind="nope"), backend(id="p2", backend_prefix="x:y")]},
        "server": {"auth": {"enabled": True}},
        "routes": [{"name": "r", "targets": ["ghost/m"]}],
    }
    code, lines = check(tmp_path, doc)
    assert code == 1
    assert len(lines) == 4, lines


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check-config", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1 and "cannot read" in result.output
    code, lines = check(tmp_path, "server: [unclosed\n")
    assert code == 1 and "invalid YAML" in lines[0] and "line" in lines[0]
    code, lines = check(tmp_path, "- just\n- a list\n")
    assert code == 1 and "must be a mapping" in lines[0]


def test_env_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_HOST", "0.0.0.0")
    cfg = parse_config(
        {"server": {"host": "${RG_HOST}", "port": "${RG_PORT:-9090}"}},
        env={"RG_HOST": "10.1.2.3"},
    )
    assert cfg.server.host == "10.1.2.3" and cfg.server.port == 9090
    with pytest.raises(ConfigError) as info:
        parse_config({"server": {"host": "${NOPE}"}}, env={})
    assert info.value.problems == [
        "server.host: environment variable NOPE is not set — export NOPE=… or write "
        "${NOPE:-default} to give a default"
    ]
    code, _ = check(tmp_path, {"server": {"host": "${RG_HOST}"}})
    assert code == 0


def test_env_key_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P1_KEY", "sk-first-000000")
    doc = {"plugins": {"backends": [backend(api_key=None, api_key_env_var_root="P1_KEY")]}}
    assert check(tmp_path, doc)[0] == 0
    from relaygate.config import env_keys

    assert env_keys("K", {"K": "a", "K_2": "b", "K_3": "c", "K_5": "e"}) == ["a", "b", "c"]
    assert env_keys("K", {"K_2": "b"}) == []


def test_secrets_never_printed(tmp_path: Path) -> None:
    doc = {"plugins": {"backends": [backend(api_key="sk-very-secret-value", kind="bogus")]}}
    code, lines = check(tmp_path, doc)
    assert code == 1
    assert not any("sk-very-secret-value" in line for line in lines)
