"""Field validators and usage/finish helpers the Gemini modules share."""

from __future__ import annotations

from typing import Any

from relaygate.canonical import (
    StopReason,
    Usage,
    invalid,
)
from relaygate.dialects._common import is_int, is_number
from relaygate.dialects.gemini._tables import _CF, FINISH_TO_STOP


def _g(d: dict[str, Any], camel: str, snake: str) -> Any:
    """``d[camel]``, else ``d[snake]``: google-genai sends camelCase, other clients snake_case."""
    value = d.get(camel)
    return d.get(snake) if value is None else value


# ----------------------------------------------------------------------------- validation


def _dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{param} must be an object", param)
    return value


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid(f"{param} must be an array", param)
    return value


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{param} must be a string", param)
    return value


def _number(value: Any, param: str) -> float | None:
    if value is None:
        return None
    if not is_number(value):
        raise invalid(f"{param} must be a number", param)
    return value


def _integer(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if is_int(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():  # google-genai sends topK as a float
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():  # proto3 JSON allows "64"
        return int(value)
    raise invalid(f"{param} must be an integer", param)


# ----------------------------------------------------------------------------- usage


def _usage(meta: Any) -> Usage:
    if not isinstance(meta, dict):
        return Usage()
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    # promptTokenCount already includes cachedContentTokenCount; candidatesTokenCount excludes
    # thoughtsTokenCount.
    return Usage(
        input_tokens=prompt,
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _usage_metadata(usage: Usage) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        meta["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def _stop(finish: Any, tool_calls: bool, blocked: bool) -> StopReason:
    if not isinstance(finish, str):
        return _CF if blocked else StopReason.TOOL_USE if tool_calls else StopReason.END_TURN
    stop = FINISH_TO_STOP.get(finish, StopReason.END_TURN)
    return StopReason.TOOL_USE if tool_calls and stop is StopReason.END_TURN else stop
