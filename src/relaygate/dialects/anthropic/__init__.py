"""The Anthropic Messages dialect (``POST /v1/messages``), both as a client and as an upstream.

Wire facts this module relies on:

* ``usage.input_tokens`` *excludes* cache reads and writes; canonical input is the sum of the three.
* A stream is ``message_start``, ``ping``, blocks (``content_block_start`` / ``_delta`` /
  ``_stop``, strictly one after another), ``message_delta`` (stop reason and usage), then
  ``message_stop``. A failure mid-way is ``event: error``.
* Tool results live in *user* turns; canonical gives each its own ``TOOL`` message.
* A thinking block's signature is only valid for Anthropic. Thinking that came from another
  family is shown to Anthropic clients with its origin wrapped into the signature
  (``rg:<origin>:<signature>``), so a client echoing it back (Claude Code does) hands the
  original family its own signature again; such blocks are never sent to Anthropic.
"""

from __future__ import annotations

from relaygate.dialects.anthropic._errors import parse_error, render_error
from relaygate.dialects.anthropic._request import build_request, count_tokens_request, parse_request
from relaygate.dialects.anthropic._response import (
    parse_response,
    render_count_tokens,
    render_models,
    render_response,
    response_usage,
)
from relaygate.dialects.anthropic._stream import (
    AnthropicStreamParser,
    AnthropicStreamRenderer,
    AnthropicStreamWatch,
    make_parser,
    make_renderer,
    make_watch,
)
from relaygate.dialects.anthropic._tables import (
    BUDGET_FOR_EFFORT,
    CONTENT_TYPE_STREAM,
    DEFAULT_MAX_TOKENS,
    ERROR_TYPE_FOR_KIND,
    FAMILY,
    JSON_MODE_INSTRUCTION,
    KIND_FOR_ERROR_TYPE,
    MIN_THINKING_BUDGET,
    NAME,
    ROLE_FROM_WIRE,
    ROLE_TO_WIRE,
    SERVER_TOOLS_EXTRA,
    STOP_REASON_FROM_WIRE,
    STOP_REASON_TO_WIRE,
)

__all__ = [
    "AnthropicStreamParser",
    "AnthropicStreamRenderer",
    "AnthropicStreamWatch",
    "BUDGET_FOR_EFFORT",
    "CONTENT_TYPE_STREAM",
    "DEFAULT_MAX_TOKENS",
    "ERROR_TYPE_FOR_KIND",
    "FAMILY",
    "JSON_MODE_INSTRUCTION",
    "KIND_FOR_ERROR_TYPE",
    "MIN_THINKING_BUDGET",
    "NAME",
    "ROLE_FROM_WIRE",
    "ROLE_TO_WIRE",
    "SERVER_TOOLS_EXTRA",
    "STOP_REASON_FROM_WIRE",
    "STOP_REASON_TO_WIRE",
    "build_request",
    "count_tokens_request",
    "make_parser",
    "make_renderer",
    "make_watch",
    "parse_error",
    "parse_request",
    "parse_response",
    "response_usage",
    "render_count_tokens",
    "render_error",
    "render_models",
    "render_response",
]
