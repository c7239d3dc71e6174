"""Bad routing config: ``check-config`` and ``serve`` refuse it naming the route and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from relaygate.cli import app
from relaygate.config import ConfigError, parse_config
from relaygate.gateway import build_gateway

BACKEND = {
    "id": "p1",
    "kind": "custom-openai-legacy-compatible",
    "config": {"backend_prefix": "p1", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-x"},
}


def problems(**top: Any) -> list[str]:
    cfg = parse_config({"plugins": {"backends": [BACKEND]}, **top}, env={})
    with pytest.raises(ConfigError) as info:
        build_gateway(cfg, env={})
    return info.value.problems


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ({"targets": ["nope/m"]}, "routes[0] (r).targets[0]: 'nope/m' names no configured backend"),
        ({"targets": []}, "routes[0] (r).targets: empty — list at least one model"),
        (
            {"targets": ["p1/a", "p1/b"], "weights": [1, 0]},
            "routes[0] (r).weights[1]: 0.0 — weights must be greater than 0",
        ),
        (
            {"targets": ["p1/a", "p1/b"], "weights": [1]},
            "routes[0] (r).weights: 1 weights for 2 targets",
        ),
        (
            {"strategy": "consensus", "targets": ["p1/a", "p1/b"], "quorum": 3},
            "routes[0] (r).quorum: 3 is larger than its 2 targets — lower the quorum or add targets",
        ),
        ({"strategy": "consensus", "targets": ["p1/a"]}, "consensus needs at least two targets"),
        ({"targets": ["r2"]}, "'r2' is a route — routes do not nest"),
    ],
)
def test_bad_route(route: dict[str, Any], expected: str) -> None:
    routes = [{"name": "r", **route}, {"name": "r2", "targets": ["p1/a"]}]
    found = problems(routes=routes)
    assert any(expected in line for line in found), found


def test_duplicate_route_and_bad_sections() -> None:
    found = problems(
        routes=[{"name": "r", "targets": ["p1/a"]}, {"name": "r", "targets": ["p1/b"]}],
        breaker={"failure_treshold": 3, "reset_timeout": 0},
        health={"interval": -1},
    )
    text = "\n".join(found)
    assert "routes[1] (r).name: duplicate route name" in text
    assert "breaker.failure_treshold: unknown field" in text
    assert "breaker.reset_timeout" in text and "health.interval" in text


def test_check_config_cli_refuses_with_route_name(tmp_path: Path) -> None:
    path = tmp_path / "relaygate.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "plugins": {"backends": [BACKEND]},
                "routes": [
                    {
                        "name": "smart",
                        "strategy": "consensus",
                        "targets": ["p1/a", "ghost/b"],
                        "quorum": 5,
                    }
                ],
            }
        )
    )
    result = CliRunner().invoke(app, ["check-config", "--config", str(path)])
    assert result.exit_code == 1
    assert "routes[0] (smart).targets[1]: 'ghost/b' names no configured backend" in result.output
    assert "routes[0] (smart).quorum: 5 is larger than its 2 targets" in result.output


def test_route_timeouts_reach_the_plan() -> None:
    cfg = parse_config(
        {
            "plugins": {"backends": [BACKEND]},
            "routes": [
                {"name": "r", "targets": ["p1/a"], "timeouts": {"first_token": 2, "total": 30}}
            ],
        },
        env={},
    )
    gw = build_gateway(cfg, env={})
    plan = gw.router.resolve("r")
    assert (
        plan.timeouts is not None and plan.timeouts.first_token == 2 and plan.timeouts.total == 30
    )
    assert gw.router.resolve("p1/a").timeouts is None
    assert plan.state is gw.router.state
