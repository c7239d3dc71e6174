"""Validation of the routing sections of relaygate.yaml (``breaker:``, ``health:``) — the lines
``check-config`` prints and ``serve`` refuses on."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from relaygate.config import Config, pydantic_problems
from relaygate.routing.breaker import BreakerConfig
from relaygate.routing.health import HealthConfig


def problems(config: Config) -> list[str]:
    out: list[str] = []
    sections: list[tuple[str, type[BaseModel], dict[str, object]]] = [
        ("breaker", BreakerConfig, config.breaker),
        ("health", HealthConfig, config.health),
    ]
    for name, model, raw in sections:
        try:
            model.model_validate(raw or {})
        except ValidationError as exc:
            out.extend(pydantic_problems(exc, raw, name))
    return out


def breaker_config(config: Config) -> BreakerConfig:
    return BreakerConfig.model_validate(config.breaker or {})
