"""OpenAI Responses (``POST /v1/responses``) ↔ canonical.

Client side parses Responses bodies (``input`` as a string or an item list, ``instructions``,
function and hosted tools, ``reasoning``, ``text.format``) and renders Response objects, the
``response.*`` SSE sequence, OpenAI error bodies and the model list. Upstream side builds
Responses bodies for ``openai`` / ``custom-openai-responses-compatible`` backends and reads
their answers back.

What has no canonical counterpart is kept in ``Request.extras`` (tagged by ``source_dialect``)
so a Responses client talking to a Responses upstream loses nothing; internal keys start with
``_``: ``_items`` (input items such as ``item_reference`` or ``local_shell_call``, with their
position), ``_parts`` (content parts such as ``file_id`` images), ``_tools`` (hosted tools such
as ``web_search``) and ``_tool_choice`` (a non-function tool choice).

Reasoning items become :class:`ThinkingPart` with ``origin="openai"``: summary text as ``text``,
``encrypted_content`` as ``redacted``. In a stream the encrypted content is only final in
``response.output_item.done`` (the spec warns the ``added`` copy may be incomplete), so the
parser carries it as ``ThinkingDelta.signature``; both fields are read back when building.
Only reasoning that carries encrypted content is sent upstream (an id alone points at state
stored under one OpenAI organisation).

Thinking signed by another family (an Anthropic signature, a redacted block) reaches a
Responses client as a reasoning item whose ``encrypted_content`` is a relaygate envelope
(``relaygate.v1.`` + base64url JSON of origin, signature, redacted). When the client sends it
back, it is decoded to the original family's part, so a Responses client can drive Claude
through tool loops; the envelope is never sent to OpenAI and no signature is made up.
"""

from __future__ import annotations

from relaygate.dialects.openai_responses._errors import parse_error, render_error
from relaygate.dialects.openai_responses._request import build_request, parse_request
from relaygate.dialects.openai_responses._response import (
    parse_response,
    render_models,
    render_response,
    response_items,
    response_usage,
)
from relaygate.dialects.openai_responses._stream import (
    StreamParser,
    StreamRenderer,
    StreamWatch,
    make_parser,
    make_renderer,
    make_watch,
)
from relaygate.dialects.openai_responses._tables import (
    CONTENT_TYPE_STREAM,
    ENVELOPE_PREFIX,
    ERROR_CODE_FOR_KIND,
    ERROR_TYPE_FOR_KIND,
    FAILED_CODE_FOR_KIND,
    INCOMPLETE_FROM_STOP,
    KIND_FOR_ERROR_TYPE,
    KIND_FOR_FAILED_CODE,
    MIN_OUTPUT_TOKENS,
    NAME,
    ORIGIN,
    ROLE_FROM_WIRE,
    ROLE_TO_WIRE,
    STOP_FROM_INCOMPLETE,
)

__all__ = [
    "CONTENT_TYPE_STREAM",
    "ENVELOPE_PREFIX",
    "ERROR_CODE_FOR_KIND",
    "ERROR_TYPE_FOR_KIND",
    "FAILED_CODE_FOR_KIND",
    "INCOMPLETE_FROM_STOP",
    "KIND_FOR_ERROR_TYPE",
    "KIND_FOR_FAILED_CODE",
    "MIN_OUTPUT_TOKENS",
    "NAME",
    "ORIGIN",
    "ROLE_FROM_WIRE",
    "ROLE_TO_WIRE",
    "STOP_FROM_INCOMPLETE",
    "StreamParser",
    "StreamRenderer",
    "StreamWatch",
    "build_request",
    "make_parser",
    "make_renderer",
    "make_watch",
    "parse_error",
    "parse_request",
    "parse_response",
    "response_usage",
    "render_error",
    "render_models",
    "render_response",
    "response_items",
]
