"""Keep secrets out of logs, errors and admin responses."""

from __future__ import annotations

import re

# Provider key shapes (OpenAI sk-…, Anthropic sk-ant-…, Google AIza…, bearer tokens) and any
# value that follows a key-ish name.
_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.=:/+]{8,}"),
    re.compile(
        r"(?i)((?:api[_-]?key|x-api-key|x-goog-api-key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{4,}"
    ),
    re.compile(r"(?i)([?&]key=)[^&\s\"']+"),
]

_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret relaygate holds (a provider key, the master key) so that it is scrubbed
    wherever it appears, whatever its shape."""
    if value and len(value) >= 6:
        _known.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret and every key-shaped token replaced by ``***``."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text


def mask(value: str | None) -> str | None:
    """A display form of a secret: its last four characters only."""
    if not value:
        return value
    return "…" + value[-4:] if len(value) > 8 else "***"
