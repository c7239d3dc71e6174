"""Google Gemini ``generateContent``, both ways.

Client side: ``POST /v1beta/models/{model}:generateContent`` bodies in (the model sits in the
path, see :func:`parse_model_path`), ``GenerateContentResponse`` objects out, streamed either as
SSE (``?alt=sse``) or as a progressively written JSON array. Upstream side: the same format
towards ``generativelanguage.googleapis.com``.

Conventions of this module (they are what makes Gemini round-trip through canonical):

* A ``thoughtSignature`` can sit on any part. On a ``thought: true`` part it stays on the
  :class:`ThinkingPart`; on any other part it becomes an empty ``ThinkingPart(signature=…,
  origin="gemini")`` placed *just before* that part. Building reverses this: an empty gemini
  thinking part with a signature is folded into the part that follows it (or sent as an empty
  text part carrying the signature when nothing follows), which is exactly where Gemini put it.
* Function calls without an ``id`` get a stable one, ``call_<n>_<name>`` (``n`` counts the calls
  of the request or response); function responses without one take the id of the earliest
  unanswered call of the same name.
* ``functionResponse.response`` is an object: ``{"result": text}`` (``{"error": text}`` for
  errors) both ways; any other object is carried as its compact JSON text.
"""

from __future__ import annotations

from relaygate.dialects.gemini._errors import parse_error, render_error
from relaygate.dialects.gemini._request import build_request, parse_model_path, parse_request
from relaygate.dialects.gemini._response import (
    parse_response,
    render_models,
    render_response,
    response_usage,
)
from relaygate.dialects.gemini._stream import (
    GeminiStreamParser,
    GeminiStreamRenderer,
    GeminiStreamWatch,
    make_parser,
    make_renderer,
    make_watch,
)
from relaygate.dialects.gemini._tables import (
    CANONICAL_TO_ROLE,
    CHOICE_TO_MODE,
    CONTENT_TYPE_ARRAY,
    CONTENT_TYPE_STREAM,
    EFFORT_TO_BUDGET,
    EFFORT_TO_LEVEL,
    FINISH_TO_STOP,
    KIND_TO_STATUS,
    LEVEL_TO_EFFORT,
    METHODS,
    MODE_TO_CHOICE,
    NAME,
    ORIGIN,
    ROLE_TO_CANONICAL,
    STATUS_TO_HTTP,
    STOP_TO_FINISH,
)

__all__ = [
    "CANONICAL_TO_ROLE",
    "CHOICE_TO_MODE",
    "CONTENT_TYPE_ARRAY",
    "CONTENT_TYPE_STREAM",
    "EFFORT_TO_BUDGET",
    "EFFORT_TO_LEVEL",
    "FINISH_TO_STOP",
    "GeminiStreamParser",
    "GeminiStreamRenderer",
    "GeminiStreamWatch",
    "KIND_TO_STATUS",
    "LEVEL_TO_EFFORT",
    "METHODS",
    "MODE_TO_CHOICE",
    "NAME",
    "ORIGIN",
    "ROLE_TO_CANONICAL",
    "STATUS_TO_HTTP",
    "STOP_TO_FINISH",
    "build_request",
    "make_parser",
    "make_renderer",
    "make_watch",
    "parse_error",
    "parse_model_path",
    "parse_request",
    "parse_response",
    "response_usage",
    "render_error",
    "render_models",
    "render_response",
]
