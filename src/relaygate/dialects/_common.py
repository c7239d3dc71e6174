"""Small helpers several dialects share. Pure functions; no dialect-specific wording here.

Error *messages* stay in each dialect (every provider phrases its 400s its own way); what is
shared is the checking and the wire-neutral conversions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

import orjson

from relaygate.canonical import JSON, ModelInfo, Request


def is_int(value: object) -> TypeGuard[int]:
    """An integer that is not a bool (JSON ``true`` decodes to a Python int subclass)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: object) -> str:
    """The JSON-ish name of ``value``'s type for an error message (``null`` for ``None``)."""
    return "null" if value is None else type(value).__name__


def split_data_url(url: str) -> tuple[str | None, str]:
    """``data:image/png;base64,AAA`` → (``image/png``, ``AAA``)."""
    head, _, data = url.partition(",")
    return head[5:].split(";", 1)[0] or None, data


def data_url(media_type: str, data: str) -> str:
    """The inverse of :func:`split_data_url` for base64 data."""
    return f"data:{media_type};base64,{data}"


def json_text(value: JSON) -> str:
    """Compact JSON text of ``value`` (tool arguments are kept as text in canonical)."""
    return orjson.dumps(value).decode()


def arguments_object(arguments: str) -> dict[str, Any] | None:
    """Tool-call arguments (JSON text) as the object wire formats that take one want.

    Blank text is ``{}``; text that is not a JSON object is ``None`` so the caller can say
    what it did about it.
    """
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def set_fields(request: Request, out: dict[str, Any], names: Mapping[str, str]) -> None:
    """Copy the set fields of ``request`` into ``out`` under their wire names.

    ``names`` maps canonical attribute → wire key, in the order the keys should appear;
    ``None`` and empty lists are not set. Example: ``{"top_p": "topP", "stop": "stopSequences"}``.
    """
    for attr, key in names.items():
        value = getattr(request, attr)
        if value is None or value == []:
            continue
        out[key] = list(value) if isinstance(value, list) else value


def openai_models(models: list[ModelInfo]) -> bytes:
    """``GET /v1/models`` as OpenAI shapes it (Chat Completions and Responses share it)."""
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {
                    "id": m.id,
                    "object": "model",
                    "created": m.created,
                    "owned_by": m.owned_by or m.backend,
                }
                for m in models
            ],
        }
    )


__all__ = [
    "arguments_object",
    "data_url",
    "is_int",
    "is_number",
    "json_text",
    "openai_models",
    "set_fields",
    "split_data_url",
    "type_name",
]
