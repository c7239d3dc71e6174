"""Helpers the Anthropic request, response and stream modules share: usage, signatures, JSON."""

from __future__ import annotations

import logging
from typing import Any

from relaygate.canonical import (
    TextPart,
    Usage,
)
from relaygate.dialects._common import arguments_object
from relaygate.dialects.anthropic._tables import _SIG_PREFIX, FAMILY

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- small helpers


def _wrap_signature(origin: str | None, value: str | None) -> str:
    """A signature as an Anthropic client sees it: raw for Anthropic's own, tagged otherwise."""
    if origin == FAMILY:
        return value or ""
    if origin is None:
        return value or ""
    return f"{_SIG_PREFIX}{origin}:{value or ''}"


def _unwrap_signature(value: str | None) -> tuple[str | None, str | None]:
    """``(origin, signature)`` of a signature received from an Anthropic client."""
    if not value:
        return None, None
    if value.startswith(_SIG_PREFIX):
        origin, _, sig = value[len(_SIG_PREFIX) :].partition(":")
        return origin or None, sig or None
    return FAMILY, value


def _usage_from_wire(raw: dict[str, Any]) -> Usage:
    fresh = raw.get("input_tokens") or 0
    read = raw.get("cache_read_input_tokens") or 0
    write = raw.get("cache_creation_input_tokens") or 0
    details = raw.get("output_tokens_details")
    reasoning = (details.get("thinking_tokens") or 0) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=fresh + read + write,
        output_tokens=raw.get("output_tokens") or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )


def _usage_to_wire(usage: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": max(
            0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
        ),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


# =========================================================================== client side: render


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _tool_input(arguments: str) -> dict[str, Any]:
    value = arguments_object(arguments)
    if value is None:
        log.warning("anthropic: tool arguments are not a JSON object; sending an empty input")
        return {}
    return value
