"""The price table: USD per million tokens by model, defaults shipped in ``data/prices.yaml``,
overridden by ``prices:`` in the config::

    prices:
      defaults: true            # false = only the models listed here
      models:
        my-model: {input: 0.5, output: 1.5, cache_read: 0.05, cache_write: 0.6}

A model is looked up by its full selector (``prefix/model``), then its native id, then the
longest price key its native id starts with (dated snapshots such as ``gpt-4o-mini-2024-07-18``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relaygate.canonical import Usage
from relaygate.config import Config, pydantic_problems
from relaygate.routing.attempt import Outcome


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)


class PricesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: bool = True
    models: dict[str, ModelPrice] = Field(default_factory=dict)


def problems(config: Config) -> list[str]:
    """The ``prices:`` section's problems, one line each."""
    try:
        PricesConfig.model_validate(config.prices)
    except ValidationError as exc:
        return pydantic_problems(exc, config.prices, "prices")
    return []


def _defaults() -> dict[str, ModelPrice]:
    text = resources.files("relaygate").joinpath("data/prices.yaml").read_text()
    data = yaml.safe_load(text) or {}
    return {k: ModelPrice.model_validate(v) for k, v in (data.get("models") or {}).items()}


@dataclass(slots=True)
class PriceTable:
    models: dict[str, ModelPrice]
    # lookup() results: an unknown model costs a scan of every name for a prefix match, and
    # the ledger and the cost header look a model up on every request.
    _found: dict[tuple[str | None, str | None], ModelPrice | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> PriceTable:
        cfg = PricesConfig.model_validate(section)
        models = _defaults() if cfg.defaults else {}
        models.update(cfg.models)
        return cls(models)

    def lookup(self, selector: str | None, native_id: str | None = None) -> ModelPrice | None:
        key = (selector, native_id)
        try:
            return self._found[key]
        except KeyError:
            pass
        price = self._lookup(selector, native_id)
        if len(self._found) >= 4096:  # selectors come from the config; bound it all the same
            self._found.clear()
        self._found[key] = price
        return price

    def _lookup(self, selector: str | None, native_id: str | None) -> ModelPrice | None:
        for name in (selector, native_id):
            if name and name in self.models:
                return self.models[name]
        native = native_id or (selector.split("/", 1)[-1] if selector else None)
        if not native:
            return None
        if native in self.models:
            return self.models[native]
        best: str | None = None
        for key in self.models:
            if native.startswith(key + "-") and (best is None or len(key) > len(best)):
                best = key
        return self.models[best] if best else None

    def cost(
        self, usage: Usage, selector: str | None, native_id: str | None = None
    ) -> float | None:
        """USD for ``usage``, or None when the model has no price or nothing was counted."""
        if not usage.input_tokens and not usage.output_tokens:
            return None
        price = self.lookup(selector, native_id)
        if price is None:
            return None
        cache_read = usage.cache_read_tokens
        cache_write = usage.cache_write_tokens
        uncached = max(0, usage.input_tokens - cache_read - cache_write)
        total = (
            uncached * price.input
            + cache_read * (price.cache_read if price.cache_read is not None else price.input)
            + cache_write * (price.cache_write if price.cache_write is not None else price.input)
            + usage.output_tokens * price.output
        )
        return round(total / 1_000_000, 8)


# The table the response header uses; the store subsystem sets it from the running config.
current = PriceTable({})


def set_current(table: PriceTable) -> None:
    global current
    current = table


def cost_header(outcome: Outcome) -> list[tuple[bytes, bytes]]:
    """``x-relaygate-cost`` for answers whose usage is known when headers go out (non-streamed)."""
    if outcome.chunks is not None:
        return []
    cost = current.cost(outcome.usage, outcome.target.selector, outcome.target.native_id)
    if cost is None:
        return []
    return [(b"x-relaygate-cost", f"{cost:.8f}".rstrip("0").rstrip(".").encode() or b"0")]
