"""Validators, reasoning envelopes, usage and item helpers the Responses modules share."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from relaygate.canonical import (
    ThinkingPart,
    Usage,
    invalid,
)
from relaygate.dialects._common import is_number, type_name
from relaygate.dialects.openai_responses._tables import ENVELOPE_PREFIX, ORIGIN

# --------------------------------------------------------------------------- small validators


def _req_str(obj: dict[str, Any], key: str, param: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        if value is None:
            raise invalid(f"Missing required parameter: '{param}'.", param)
        raise invalid(
            f"Invalid type for '{param}': expected a string, got {type_name(value)}.", param
        )
    return value


def _opt_str(obj: dict[str, Any], key: str, param: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid(
            f"Invalid type for '{param}': expected a string, got {type_name(value)}.", param
        )
    return value


def _opt_bool(obj: dict[str, Any], key: str, param: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid(
            f"Invalid type for '{param}': expected a boolean, got {type_name(value)}.", param
        )
    return value


def _opt_num(obj: dict[str, Any], key: str, param: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if not is_number(value):
        raise invalid(
            f"Invalid type for '{param}': expected a number, got {type_name(value)}.", param
        )
    return value


def _opt_dict(obj: dict[str, Any], key: str, param: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, dict):
        raise invalid(
            f"Invalid type for '{param}': expected an object, got {type_name(value)}.", param
        )
    return value


def _envelope(origin: str | None, signature: str | None, redacted: str | None) -> str:
    payload = orjson.dumps({"origin": origin, "signature": signature, "redacted": redacted})
    return ENVELOPE_PREFIX + base64.urlsafe_b64encode(payload).decode()


def _thinking(text: str, encrypted: str | None, item_id: str | None) -> ThinkingPart:
    """A reasoning item → :class:`ThinkingPart`, opening relaygate envelopes."""
    if encrypted and encrypted.startswith(ENVELOPE_PREFIX):
        try:
            data = orjson.loads(base64.urlsafe_b64decode(encrypted[len(ENVELOPE_PREFIX) :]))
        except (binascii.Error, ValueError):
            data = None
        if isinstance(data, dict):

            def field(key: str) -> str | None:
                value = data.get(key)
                return value if isinstance(value, str) else None

            return ThinkingPart(
                text=text,
                signature=field("signature"),
                redacted=field("redacted"),
                origin=field("origin"),
            )
        return ThinkingPart(text=text)  # a damaged envelope: keep the text, trust nothing
    return ThinkingPart(text=text, redacted=encrypted, origin=ORIGIN, id=item_id)


def _encrypted_for(origin: str | None, signature: str | None, redacted: str | None) -> str | None:
    """What goes in ``encrypted_content`` for a thinking part rendered to a Responses client."""
    if origin == ORIGIN:
        return signature or redacted
    if signature or redacted:
        return _envelope(origin, signature, redacted)
    return None


# --------------------------------------------------------------------------- responses (both sides)


def _usage_from(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    inp = raw.get("input_tokens", raw.get("prompt_tokens")) or 0
    out = raw.get("output_tokens", raw.get("completion_tokens")) or 0
    in_details = raw.get("input_tokens_details") or {}
    out_details = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=in_details.get("cached_tokens") or 0,
        cache_write_tokens=in_details.get("cache_write_tokens") or 0,
        reasoning_tokens=out_details.get("reasoning_tokens") or 0,
    )


def _usage_to(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _item_id(prefix: str, response_id: str, n: int) -> str:
    return f"{prefix}_{response_id.removeprefix('resp_')}_{n}"


def _reasoning_item(item_id: str, text: str, encrypted: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if encrypted:
        item["encrypted_content"] = encrypted
    return item
