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

import logging
import mimetypes
import re
from collections import deque
from typing import Any, Literal

import orjson

from relaygate.canonical import (
    BlockStop,
    ContentPart,
    DocumentPart,
    ErrorEvent,
    ErrorKind,
    GatewayError,
    ImagePart,
    Message,
    MessageStart,
    MessageStop,
    ModelInfo,
    Request,
    Response,
    ResponseFormat,
    Role,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    TextStart,
    ThinkingConfig,
    ThinkingDelta,
    ThinkingPart,
    ThinkingStart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
    client_status_for_upstream,
    invalid,
    upstream_kind_for_status,
)
from relaygate.dialects.sse import SSEEvent

NAME = "gemini"
CONTENT_TYPE_STREAM = "text/event-stream"
CONTENT_TYPE_ARRAY = "application/json"  # streamGenerateContent without ?alt=sse
ORIGIN = "gemini"  # provider family that signs thoughts
METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- mapping tables

_CF = StopReason.CONTENT_FILTER
_ERR = StopReason.ERROR
FINISH_TO_STOP: dict[str, StopReason] = {
    "STOP": StopReason.END_TURN,
    "FINISH_REASON_UNSPECIFIED": StopReason.END_TURN,
    "MAX_TOKENS": StopReason.MAX_TOKENS,
    "SAFETY": _CF,
    "RECITATION": _CF,
    "BLOCKLIST": _CF,
    "PROHIBITED_CONTENT": _CF,
    "SPII": _CF,
    "IMAGE_SAFETY": _CF,
    "IMAGE_PROHIBITED_CONTENT": _CF,
    "IMAGE_RECITATION": _CF,
    "LANGUAGE": _ERR,
    "OTHER": _ERR,
    "MALFORMED_FUNCTION_CALL": _ERR,
    "UNEXPECTED_TOOL_CALL": _ERR,
    "TOO_MANY_TOOL_CALLS": _ERR,
    "MISSING_THOUGHT_SIGNATURE": _ERR,
    "MALFORMED_RESPONSE": _ERR,
    "IMAGE_OTHER": _ERR,
    "NO_IMAGE": _ERR,
}
# Gemini has no tool-use or stop-sequence reason: both are plain STOP on the wire.
STOP_TO_FINISH: dict[StopReason, str] = {
    StopReason.END_TURN: "STOP",
    StopReason.MAX_TOKENS: "MAX_TOKENS",
    StopReason.STOP_SEQUENCE: "STOP",
    StopReason.TOOL_USE: "STOP",
    StopReason.CONTENT_FILTER: "SAFETY",
    StopReason.PAUSE: "STOP",
    StopReason.ERROR: "OTHER",
}
ROLE_TO_CANONICAL: dict[str, Role] = {
    "user": Role.USER,
    "model": Role.ASSISTANT,
    "function": Role.TOOL,
}
CANONICAL_TO_ROLE: dict[Role, str] = {Role.USER: "user", Role.ASSISTANT: "model", Role.TOOL: "user"}
MODE_TO_CHOICE: dict[str, Literal["auto", "none", "required"]] = {
    "AUTO": "auto",
    "NONE": "none",
    "ANY": "required",
    "VALIDATED": "auto",
}
CHOICE_TO_MODE: dict[str, str] = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}
LEVEL_TO_EFFORT: dict[str, str] = {
    "MINIMAL": "minimal",
    "LOW": "low",
    "MEDIUM": "medium",
    "HIGH": "high",
    "XHIGH": "xhigh",
}
EFFORT_TO_LEVEL: dict[str, str] = {
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
}
# For models without thinkingLevel (Gemini 2.x): roughly what each level spends.
EFFORT_TO_BUDGET: dict[str, int] = {"MINIMAL": 512, "LOW": 1024, "MEDIUM": 8192, "HIGH": 24576}
LEVEL_MODELS = re.compile(r"gemini-([3-9]|\d\d)")  # model ids that take thinkingLevel
KIND_TO_STATUS: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "INVALID_ARGUMENT",
    ErrorKind.AUTHENTICATION: "UNAUTHENTICATED",
    ErrorKind.PERMISSION: "PERMISSION_DENIED",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.REQUEST_TOO_LARGE: "INVALID_ARGUMENT",
    ErrorKind.RATE_LIMIT: "RESOURCE_EXHAUSTED",
    ErrorKind.BUDGET: "RESOURCE_EXHAUSTED",
    ErrorKind.LOOP: "ABORTED",
    ErrorKind.UPSTREAM: "INTERNAL",
    ErrorKind.UNAVAILABLE: "UNAVAILABLE",
    ErrorKind.OVERLOADED: "UNAVAILABLE",
    ErrorKind.TIMEOUT: "DEADLINE_EXCEEDED",
    ErrorKind.INTERNAL: "INTERNAL",
}
# google.rpc.Code names → the HTTP status Google pairs them with (used when a body has no code).
STATUS_TO_HTTP: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# ErrorInfo reasons that mean "our key is bad" although Google answers 400 INVALID_ARGUMENT.
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_NOT_FOUND"})

_GENERATION_FIELDS = {  # camelCase wire name → snake_case alias
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
    "maxOutputTokens": "max_output_tokens",
    "stopSequences": "stop_sequences",
    "candidateCount": "candidate_count",
    "responseMimeType": "response_mime_type",
    "responseSchema": "response_schema",
    "responseJsonSchema": "response_json_schema",
    "thinkingConfig": "thinking_config",
    "seed": "seed",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
}
_GENERATION_ALIASES = {snake: camel for camel, snake in _GENERATION_FIELDS.items()}
_TOP_LEVEL = {
    "contents": "contents",
    "systemInstruction": "system_instruction",
    "tools": "tools",
    "toolConfig": "tool_config",
    "generationConfig": "generation_config",
    "model": "model",
}
_TOP_ALIASES = {snake: camel for camel, snake in _TOP_LEVEL.items()}
_EXTRA_ALIASES = {"safety_settings": "safetySettings", "cached_content": "cachedContent"}

_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_SYNTH_ID = re.compile(r"^call_\d+_(.+)$")
_SECRETS = re.compile(r"AIza[0-9A-Za-z_\-]{20,}|(?<=[?&]key=)[^&\s\"']+")


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
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{param} must be a number", param)
    return value


def _integer(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # google-genai sends topK as a float
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():  # proto3 JSON allows "64"
        return int(value)
    raise invalid(f"{param} must be an integer", param)


# ----------------------------------------------------------------------------- ids


class _Ids:
    """Synthesises stable tool-call ids and pairs id-less function responses with their call."""

    __slots__ = ("count", "pending")

    def __init__(self) -> None:
        self.count = 0
        self.pending: dict[str, deque[str]] = {}

    def call(self, given: Any, name: str) -> str:
        ident = (
            given
            if isinstance(given, str) and given
            else f"call_{self.count}_{_SAFE_ID.sub('_', name)}"
        )
        self.count += 1
        self.pending.setdefault(name, deque()).append(ident)
        return ident

    def result(self, given: Any, name: str) -> str:
        queue = self.pending.get(name)
        if isinstance(given, str) and given:
            if queue and given in queue:
                queue.remove(given)
            return given
        if queue:
            return queue.popleft()
        ident = f"call_{self.count}_{_SAFE_ID.sub('_', name)}"
        self.count += 1
        return ident


# ----------------------------------------------------------------------------- parts: wire → canonical


def _media(mime: str | None, data: str | None, url: str | None) -> ImagePart | DocumentPart:
    if mime is not None and mime.startswith("image/"):
        return ImagePart(media_type=mime, data=data, url=url)
    return DocumentPart(media_type=mime, data=data, url=url)


def _parse_blob(part: dict[str, Any], param: str) -> ImagePart | DocumentPart | None:
    inline = _g(part, "inlineData", "inline_data")
    if inline is not None:
        inline = _dict(inline, f"{param}.inlineData")
        mime = _str(_g(inline, "mimeType", "mime_type"), f"{param}.inlineData.mimeType")
        return _media(mime, _str(inline.get("data"), f"{param}.inlineData.data"), None)
    file_data = _g(part, "fileData", "file_data")
    if file_data is not None:
        file_data = _dict(file_data, f"{param}.fileData")
        uri = _str(_g(file_data, "fileUri", "file_uri"), f"{param}.fileData.fileUri")
        mime = _g(file_data, "mimeType", "mime_type")
        return _media(mime if isinstance(mime, str) else None, None, uri)
    return None


def _result_content(
    response: Any, blobs: Any, param: str
) -> tuple[list[TextPart | ImagePart], bool]:
    content: list[TextPart | ImagePart] = []
    is_error = False
    if response is not None:
        response = _dict(response, f"{param}.response")
        only = next(iter(response.values())) if len(response) == 1 else None
        if isinstance(only, str) and "result" in response:
            content.append(TextPart(only))
        elif isinstance(only, str) and "error" in response:
            content.append(TextPart(only))
            is_error = True
        else:
            content.append(TextPart(orjson.dumps(response).decode()))
    for j, blob in enumerate(_list(blobs, f"{param}.parts") if blobs is not None else ()):
        media = _parse_blob(_dict(blob, f"{param}.parts[{j}]"), f"{param}.parts[{j}]")
        if isinstance(media, ImagePart):
            content.append(media)
        elif media is not None:
            log.debug("gemini: dropped non-image functionResponse part %s", param)
    return content, is_error


def _parse_parts(parts: list[Any], param: str, ids: _Ids) -> list[ContentPart]:
    out: list[ContentPart] = []
    for j, raw in enumerate(parts):
        p = f"{param}[{j}]"
        part = _dict(raw, p)
        sig = _g(part, "thoughtSignature", "thought_signature")
        if sig is not None:
            _str(sig, f"{p}.thoughtSignature")
        text = part.get("text")
        if text is not None:
            _str(text, f"{p}.text")
        if part.get("thought") is True:
            out.append(ThinkingPart(text=text or "", signature=sig, origin=ORIGIN))
            continue
        if sig:
            out.append(ThinkingPart(text="", signature=sig, origin=ORIGIN))
        if text is not None:
            if text:
                out.append(TextPart(text))
            continue
        media = _parse_blob(part, p)
        if media is not None:
            out.append(media)
            continue
        call = _g(part, "functionCall", "function_call")
        if call is not None:
            call = _dict(call, f"{p}.functionCall")
            name = _str(call.get("name"), f"{p}.functionCall.name")
            args = call.get("args")
            args = {} if args is None else _dict(args, f"{p}.functionCall.args")
            out.append(
                ToolCallPart(ids.call(call.get("id"), name), name, orjson.dumps(args).decode())
            )
            continue
        result = _g(part, "functionResponse", "function_response")
        if result is not None:
            result = _dict(result, f"{p}.functionResponse")
            name = _str(result.get("name"), f"{p}.functionResponse.name")
            content, is_error = _result_content(
                result.get("response"), result.get("parts"), f"{p}.functionResponse"
            )
            out.append(ToolResultPart(ids.result(result.get("id"), name), content, is_error, name))
            continue
        log.debug("gemini: dropped part with fields %s", sorted(part))
    return out


def _parse_contents(contents: list[Any], ids: _Ids) -> list[Message]:
    messages: list[Message] = []
    for i, raw in enumerate(contents):
        content = _dict(raw, f"contents[{i}]")
        role = content.get("role") or "user"
        if not isinstance(role, str) or role not in ROLE_TO_CANONICAL:
            raise invalid(f"contents[{i}].role must be 'user' or 'model'", f"contents[{i}].role")
        if "parts" not in content:
            raise invalid(f"contents[{i}].parts is required", f"contents[{i}].parts")
        parts = _parse_parts(
            _list(content["parts"], f"contents[{i}].parts"), f"contents[{i}].parts", ids
        )
        if role == "model":
            messages.append(Message(Role.ASSISTANT, parts))
            continue
        # Function responses become tool turns; anything else in the same content a user turn.
        run: list[ContentPart] = []
        run_is_tool = False
        for part in parts:
            is_tool = isinstance(part, ToolResultPart)
            if run and is_tool != run_is_tool:
                messages.append(Message(Role.TOOL if run_is_tool else Role.USER, run))
                run = []
            run.append(part)
            run_is_tool = is_tool
        if run or not parts:
            messages.append(Message(Role.TOOL if run_is_tool else Role.USER, run))
    return messages


def _schema_from_openapi(schema: Any) -> Any:
    """Gemini's OpenAPI-subset ``Schema`` (``"type": "OBJECT"``, ``nullable``) → JSON Schema."""
    if isinstance(schema, list):
        return [_schema_from_openapi(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key == "nullable":
            continue
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {k: _schema_from_openapi(v) for k, v in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "not", "additionalProperties"):
            out[key] = _schema_from_openapi(value)
        else:
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# ----------------------------------------------------------------------------- request: client → canonical


def parse_model_path(path_tail: str) -> tuple[str, str]:
    """Split ``"openrouter/x/y:streamGenerateContent"`` into model and method.

    The model may itself contain ``/`` and ``:`` (``ollama/llama3:8b``), so the method is what
    follows the *last* colon.
    """
    model, sep, method = path_tail.lstrip("/").rpartition(":")
    if model.startswith("models/"):
        model = model[len("models/") :]
    if not sep or not model:
        raise invalid(f"expected models/{{model}}:{{method}}, got {path_tail!r}", "model")
    if method not in METHODS:
        raise invalid(f"unknown method {method!r}", "method")
    return model, method


def _parse_tools(raw: Any, extras: dict[str, Any]) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    other: list[Any] = []
    for i, tool in enumerate(_list(raw, "tools")):
        tool = _dict(tool, f"tools[{i}]")
        decls = _g(tool, "functionDeclarations", "function_declarations")
        rest = {
            k: v
            for k, v in tool.items()
            if k not in ("functionDeclarations", "function_declarations")
        }
        if rest:  # googleSearch, codeExecution, urlContext, … have no canonical counterpart
            other.append(rest)
        if decls is None:
            continue
        for j, decl in enumerate(_list(decls, f"tools[{i}].functionDeclarations")):
            p = f"tools[{i}].functionDeclarations[{j}]"
            decl = _dict(decl, p)
            name = _str(decl.get("name"), f"{p}.name")
            description = decl.get("description")
            if description is not None:
                _str(description, f"{p}.description")
            schema = _g(decl, "parametersJsonSchema", "parameters_json_schema")
            if schema is None and decl.get("parameters") is not None:
                schema = _schema_from_openapi(_dict(decl["parameters"], f"{p}.parameters"))
            elif schema is not None:
                schema = _dict(schema, f"{p}.parametersJsonSchema")
            specs.append(ToolSpec(name=name, description=description, parameters=schema))
    if other:
        extras["tools"] = other
    return specs


def _parse_tool_config(raw: Any, extras: dict[str, Any]) -> ToolChoice | None:
    config = _dict(raw, "toolConfig")
    rest = {
        k: v
        for k, v in config.items()
        if k not in ("functionCallingConfig", "function_calling_config")
    }
    if rest:
        extras["toolConfig"] = rest
    fcc = _g(config, "functionCallingConfig", "function_calling_config")
    if fcc is None:
        return None
    fcc = _dict(fcc, "toolConfig.functionCallingConfig")
    mode = _str(fcc.get("mode", "AUTO"), "toolConfig.functionCallingConfig.mode").upper()
    if mode not in MODE_TO_CHOICE:
        raise invalid(
            f"unknown function calling mode {mode!r}", "toolConfig.functionCallingConfig.mode"
        )
    names = _g(fcc, "allowedFunctionNames", "allowed_function_names")
    names = _list(names, "toolConfig.functionCallingConfig.allowedFunctionNames") if names else []
    if mode == "ANY" and len(names) == 1:
        return ToolChoice(
            mode="tool",
            name=_str(names[0], "toolConfig.functionCallingConfig.allowedFunctionNames"),
        )
    if mode == "VALIDATED" or names:  # a subset of tools or VALIDATED: only Gemini can say it
        extras["functionCallingConfig"] = fcc
    return ToolChoice(mode=MODE_TO_CHOICE[mode])


def _parse_thinking(raw: Any, extras: dict[str, Any]) -> ThinkingConfig:
    config = _dict(raw, "generationConfig.thinkingConfig")
    p = "generationConfig.thinkingConfig"
    budget = _integer(_g(config, "thinkingBudget", "thinking_budget"), f"{p}.thinkingBudget")
    level = _g(config, "thinkingLevel", "thinking_level")
    if level is not None:
        level = _str(level, f"{p}.thinkingLevel").upper()
    include = _g(config, "includeThoughts", "include_thoughts")
    if budget == 0 and level is None:
        return ThinkingConfig(enabled=False)
    if include is not True:  # Gemini thinks by default but only shows thoughts when asked
        extras["includeThoughts"] = False
    return ThinkingConfig(
        enabled=True,
        budget_tokens=budget if budget is not None and budget > 0 else None,
        effort=LEVEL_TO_EFFORT.get(level, level.lower()) if level is not None else None,
        adaptive=budget is not None and budget < 0,
    )


def _parse_generation(raw: Any, request: Request) -> None:
    config = _dict(raw, "generationConfig")
    extras: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for key, value in config.items():
        camel = _GENERATION_ALIASES.get(key, key)
        if camel in _GENERATION_FIELDS:
            values[camel] = value
        else:
            extras[key] = value
    p = "generationConfig"
    request.temperature = _number(values.get("temperature"), f"{p}.temperature")
    request.top_p = _number(values.get("topP"), f"{p}.topP")
    request.top_k = _integer(values.get("topK"), f"{p}.topK")
    request.max_tokens = _integer(values.get("maxOutputTokens"), f"{p}.maxOutputTokens")
    request.n = _integer(values.get("candidateCount"), f"{p}.candidateCount")
    request.seed = _integer(values.get("seed"), f"{p}.seed")
    request.presence_penalty = _number(values.get("presencePenalty"), f"{p}.presencePenalty")
    request.frequency_penalty = _number(values.get("frequencyPenalty"), f"{p}.frequencyPenalty")
    stop = values.get("stopSequences")
    if stop is not None:
        request.stop = [_str(s, f"{p}.stopSequences") for s in _list(stop, f"{p}.stopSequences")]
    mime = values.get("responseMimeType")
    json_schema = values.get("responseJsonSchema")
    schema = (
        _schema_from_openapi(values["responseSchema"])
        if json_schema is None and values.get("responseSchema") is not None
        else json_schema
    )
    if mime is not None:
        mime = _str(mime, f"{p}.responseMimeType")
        if mime == "application/json":
            if schema is not None:
                request.response_format = ResponseFormat(
                    "json_schema", _dict(schema, f"{p}.responseJsonSchema")
                )
            else:
                request.response_format = ResponseFormat("json_object")
        elif mime == "text/plain":
            request.response_format = ResponseFormat("text")
        else:  # text/x.enum and friends
            extras["responseMimeType"] = mime
            if schema is not None:
                extras["responseJsonSchema"] = schema
    if values.get("thinkingConfig") is not None:
        request.thinking = _parse_thinking(values["thinkingConfig"], request.extras)
    if extras:
        request.extras["generationConfig"] = extras


def parse_request(body: dict[str, Any]) -> Request:
    """A client's ``generateContent`` body → :class:`Request` (``model`` comes from the path)."""
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    contents = body.get("contents")
    if contents is None:
        raise invalid("contents is required", "contents")
    contents = _list(contents, "contents")
    if not contents:
        raise invalid("contents must not be empty", "contents")
    model = body.get("model", "")
    request = Request(
        model=model if isinstance(model, str) else "",
        messages=_parse_contents(contents, _Ids()),
        source_dialect=NAME,
    )
    system = _g(body, "systemInstruction", "system_instruction")
    if isinstance(system, str):
        request.system = [TextPart(system)]
    elif system is not None:
        parts = _list(
            _dict(system, "systemInstruction").get("parts", []), "systemInstruction.parts"
        )
        for j, part in enumerate(parts):
            text = _dict(part, f"systemInstruction.parts[{j}]").get("text")
            request.system.append(TextPart(_str(text, f"systemInstruction.parts[{j}].text")))
    tools = body.get("tools")
    if tools is not None:
        request.tools = _parse_tools(tools, request.extras)
    tool_config = _g(body, "toolConfig", "tool_config")
    if tool_config is not None:
        request.tool_choice = _parse_tool_config(tool_config, request.extras)
    generation = _g(body, "generationConfig", "generation_config")
    if generation is not None:
        _parse_generation(generation, request)
    for key, value in body.items():
        if key not in _TOP_LEVEL and key not in _TOP_ALIASES:
            request.extras[_EXTRA_ALIASES.get(key, key)] = value
    return request


# ----------------------------------------------------------------------------- parts: canonical → wire


def _args_object(arguments: str, dropped: list[str]) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        args = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        args = None
    if isinstance(args, dict):
        return args
    dropped.append("tool_call.arguments(not a JSON object)")
    return {}


def _blob(media_type: str | None, data: str | None, url: str | None) -> dict[str, Any] | None:
    if data is not None:
        return {"inlineData": {"mimeType": media_type or "application/octet-stream", "data": data}}
    if url is None:
        return None
    if url.startswith("data:"):
        head, _, payload = url.partition(",")
        inline_mime = head[5:].split(";", 1)[0] or media_type or "application/octet-stream"
        return {"inlineData": {"mimeType": inline_mime, "data": payload}}
    mime = media_type or mimetypes.guess_type(url.split("?", 1)[0])[0]
    file_data: dict[str, Any] = {"mimeType": mime, "fileUri": url} if mime else {"fileUri": url}
    return {"fileData": file_data}


def _result_name(part: ToolResultPart, names: dict[str, str], dropped: list[str]) -> str:
    if part.name:
        return part.name
    name = names.get(part.tool_call_id)
    if name:
        return name
    match = _SYNTH_ID.match(part.tool_call_id)
    dropped.append("tool_result.name(unknown)")
    return match.group(1) if match else part.tool_call_id


def _plain_part(
    part: ContentPart, names: dict[str, str], dropped: list[str]
) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        if part.cache_control is not None:
            dropped.append("cache_control")
        return {"text": part.text}
    if isinstance(part, ImagePart):
        if part.detail is not None:
            dropped.append("image.detail")
        return _blob(part.media_type, part.data, part.url)
    if isinstance(part, DocumentPart):
        if part.filename is not None:
            dropped.append("document.filename")
        return _blob(part.media_type, part.data, part.url)
    if isinstance(part, ToolCallPart):
        names[part.id] = part.name
        args = _args_object(part.arguments, dropped)
        return {"functionCall": {"id": part.id, "name": part.name, "args": args}}
    if isinstance(part, ToolResultPart):
        text = "\n".join(p.text for p in part.content if isinstance(p, TextPart))
        response: dict[str, Any] = {"error": text} if part.is_error else {"result": text}
        result: dict[str, Any] = {
            "id": part.tool_call_id,
            "name": _result_name(part, names, dropped),
            "response": response,
        }
        blobs = [
            b
            for p in part.content
            if isinstance(p, ImagePart)
            if (b := _blob(p.media_type, p.data, p.url))
        ]
        if blobs:
            result["parts"] = blobs
        return {"functionResponse": result}
    dropped.append(part.type)
    return None


def _render_parts(
    content: list[ContentPart], names: dict[str, str], dropped: list[str], *, upstream: bool
) -> list[dict[str, Any]]:
    """Canonical parts → Gemini parts. ``upstream`` drops thinking not signed by Gemini (it is
    being sent *to* Gemini); towards a client, foreign thinking keeps its text, not its signature."""
    out: list[dict[str, Any]] = []
    pending: str | None = None  # a bare signature waiting for the part it belongs to
    for part in content:
        if isinstance(part, ThinkingPart):
            own = part.origin == ORIGIN
            if upstream and not own:
                dropped.append(f"thinking(origin={part.origin})")
                continue
            if part.redacted is not None:
                dropped.append("thinking.redacted")
            sig = part.signature if own else None
            if pending is not None and (part.text or sig):
                out.append({"text": "", "thoughtSignature": pending})
                pending = None
            if part.text:
                thought: dict[str, Any] = {"text": part.text, "thought": True}
                if sig:
                    thought["thoughtSignature"] = sig
                out.append(thought)
            elif sig:
                pending = sig
            continue
        rendered = _plain_part(part, names, dropped)
        if rendered is None:
            continue
        if pending is not None:
            rendered["thoughtSignature"] = pending
            pending = None
        out.append(rendered)
    if pending is not None:
        out.append({"text": "", "thoughtSignature": pending})
    return out


# ----------------------------------------------------------------------------- request: canonical → upstream


def _thinking_config(
    thinking: ThinkingConfig, include: bool, levels: bool, dropped: list[str]
) -> dict[str, Any]:
    """``levels``: the model takes ``thinkingLevel`` (Gemini 3+). Gemini refuses a request that
    sets both ``thinkingLevel`` and ``thinkingBudget``, so exactly one of them is sent."""
    if not thinking.enabled:
        return {"thinkingBudget": 0}
    config: dict[str, Any] = {}
    effort = thinking.effort.lower() if thinking.effort is not None else None
    if effort == "none":
        return {"thinkingBudget": 0}
    level = EFFORT_TO_LEVEL.get(effort) if effort is not None else None
    if effort is not None and level is None:
        dropped.append(f"thinking.effort={thinking.effort}")
    if level is not None and (levels or thinking.budget_tokens is None):
        if levels:
            config["thinkingLevel"] = level
        else:  # Gemini 2.x only has budgets
            config["thinkingBudget"] = EFFORT_TO_BUDGET[level]
    elif thinking.budget_tokens is not None:
        config["thinkingBudget"] = thinking.budget_tokens
    elif thinking.adaptive:
        config["thinkingBudget"] = -1
    if include:
        config["includeThoughts"] = True
    return config


def _merge_extras(body: dict[str, Any], generation: dict[str, Any], extras: dict[str, Any]) -> None:
    for key, value in extras.items():
        if key == "tools":
            body.setdefault("tools", []).extend(value)
        elif key == "generationConfig":
            for k, v in value.items():
                generation.setdefault(k, v)
        elif key == "toolConfig":
            for k, v in value.items():
                body.setdefault("toolConfig", {}).setdefault(k, v)
        elif key == "functionCallingConfig":
            body.setdefault("toolConfig", {})["functionCallingConfig"] = value
        elif key != "includeThoughts":
            body.setdefault(key, value)


def build_request(request: Request, native_model: str) -> dict[str, Any]:
    """:class:`Request` → a ``generateContent`` body. The model goes in the URL
    (``models/{native_model}:generateContent``), so it is not part of the body."""
    dropped: list[str] = []
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    previous: Role | None = None
    for message in request.messages:
        parts = _render_parts(message.content, names, dropped, upstream=True)
        if message.name is not None:
            dropped.append("message.name")
        if not parts:
            dropped.append("empty message")
            continue
        if message.role is Role.TOOL and previous is Role.TOOL:
            # Parallel results travel in one turn, answering the parallel calls of the last one.
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": CANONICAL_TO_ROLE[message.role], "parts": parts})
        previous = message.role
    body: dict[str, Any] = {"contents": contents}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": p.text} for p in request.system]}
    if request.tools:
        declarations: list[dict[str, Any]] = []
        for tool in request.tools:
            decl: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                decl["description"] = tool.description
            if tool.parameters is not None:
                decl["parametersJsonSchema"] = tool.parameters
            if tool.strict is not None:
                dropped.append("tool.strict")
            declarations.append(decl)
        body["tools"] = [{"functionDeclarations": declarations}]
    if request.tool_choice is not None:
        choice = request.tool_choice
        fcc: dict[str, Any] = {"mode": CHOICE_TO_MODE[choice.mode]}
        if choice.mode == "tool" and choice.name:
            fcc["allowedFunctionNames"] = [choice.name]
        if choice.parallel is not None:
            dropped.append("tool_choice.parallel")
        body["toolConfig"] = {"functionCallingConfig": fcc}
    generation: dict[str, Any] = {}
    if request.temperature is not None:
        generation["temperature"] = request.temperature
    if request.top_p is not None:
        generation["topP"] = request.top_p
    if request.top_k is not None:
        generation["topK"] = request.top_k
    if request.max_tokens is not None:
        generation["maxOutputTokens"] = request.max_tokens
    if request.stop:
        generation["stopSequences"] = list(request.stop)
    if request.n is not None:
        generation["candidateCount"] = request.n
    if request.seed is not None:
        generation["seed"] = request.seed
    if request.presence_penalty is not None:
        generation["presencePenalty"] = request.presence_penalty
    if request.frequency_penalty is not None:
        generation["frequencyPenalty"] = request.frequency_penalty
    fmt = request.response_format
    if fmt is not None:
        generation["responseMimeType"] = "text/plain" if fmt.type == "text" else "application/json"
        if fmt.type == "json_schema":
            generation["responseJsonSchema"] = fmt.schema if fmt.schema is not None else {}
        if fmt.name is not None or fmt.strict is not None:
            dropped.append("response_format.name/strict")
    native = request.source_dialect == NAME
    if request.thinking is not None:
        include = not (native and request.extras.get("includeThoughts") is False)
        levels = LEVEL_MODELS.search(native_model) is not None
        generation["thinkingConfig"] = _thinking_config(request.thinking, include, levels, dropped)
    if native:
        _merge_extras(body, generation, request.extras)
    elif request.extras:
        dropped.extend(f"extras.{k}" for k in request.extras)
    if generation:
        body["generationConfig"] = generation
    if request.user is not None:
        dropped.append("user")
    if request.metadata:
        dropped.append("metadata")
    if dropped:
        log.debug("gemini: dropped fields with no Gemini counterpart: %s", ", ".join(dropped))
    return body


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


# ----------------------------------------------------------------------------- response: both ways

_RESPONSE_KEYS = frozenset({"candidates", "usageMetadata", "modelVersion", "responseId"})
_CANDIDATE_KEYS = frozenset({"content", "finishReason", "index"})


def _parse_response(body: dict[str, Any]) -> Response:
    error = body.get("error")
    if isinstance(error, dict):
        raise _error_from_obj(None, error)
    candidates = _list(body.get("candidates") or [], "candidates")
    content: list[ContentPart] = []
    finish: Any = None
    gemini: dict[str, Any] = {}
    if candidates:
        candidate = _dict(candidates[0], "candidates[0]")
        raw = candidate.get("content")
        if raw is not None:
            parts = _dict(raw, "candidates[0].content").get("parts") or []
            content = _parse_parts(
                _list(parts, "candidates[0].content.parts"), "candidates[0].content.parts", _Ids()
            )
        finish = candidate.get("finishReason")
        extra = {k: v for k, v in candidate.items() if k not in _CANDIDATE_KEYS}
        if extra:
            gemini["candidate"] = extra
        if len(candidates) > 1:  # candidateCount > 1: canonical holds one answer, keep the rest raw
            gemini["candidates"] = candidates[1:]
    for key, value in body.items():
        if key not in _RESPONSE_KEYS:
            gemini[key] = value
    feedback = body.get("promptFeedback")
    blocked = isinstance(feedback, dict) and feedback.get("blockReason") is not None
    tool_calls = any(isinstance(p, ToolCallPart) for p in content)
    return Response(
        id=str(body.get("responseId") or ""),
        model=str(body.get("modelVersion") or ""),
        content=content,
        stop_reason=_stop(finish, tool_calls, blocked),
        usage=_usage(body.get("usageMetadata")),
        extras={"gemini": gemini} if gemini else {},
    )


def parse_response(body: dict[str, Any]) -> Response:
    """An upstream ``GenerateContentResponse`` → :class:`Response`."""
    if not isinstance(body, dict):
        raise GatewayError(ErrorKind.UPSTREAM, "malformed Gemini response: not an object")
    try:
        return _parse_response(body)
    except GatewayError as err:
        if err.kind is not ErrorKind.INVALID_REQUEST or err.upstream_status is not None:
            raise
        raise GatewayError(ErrorKind.UPSTREAM, f"malformed Gemini response: {err.message}") from err


def render_response(response: Response) -> bytes:
    dropped: list[str] = []
    parts = _render_parts(response.content, {}, dropped, upstream=False)
    gemini: dict[str, Any] = response.extras.get("gemini") or {}
    candidate: dict[str, Any] = {
        "content": {"parts": parts, "role": "model"},
        "finishReason": STOP_TO_FINISH[response.stop_reason],
        "index": 0,
    }
    candidate.update(gemini.get("candidate") or {})
    body: dict[str, Any] = {
        "candidates": [candidate, *(gemini.get("candidates") or [])],
        "usageMetadata": _usage_metadata(response.usage),
        "modelVersion": response.model,
        "responseId": response.id,
    }
    for key, value in gemini.items():
        if key not in ("candidate", "candidates"):
            body[key] = value
    if dropped:
        log.debug("gemini: not rendered: %s", ", ".join(dropped))
    return orjson.dumps(body)


# ----------------------------------------------------------------------------- streaming: canonical → client


def _frame_sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\r\n\r\n"  # Gemini ends SSE events with CRLF CRLF


class GeminiStreamRenderer:
    """Canonical events → Gemini chunks, as SSE or as a streamed JSON array.

    Gemini has no start or block events: every delta is a chunk of its own; a function call is
    sent whole when its block stops (Gemini's ``args`` is an object, not a string); the last
    chunk carries ``finishReason`` and ``usageMetadata``.
    """

    __slots__ = ("_closed", "_id", "_model", "_sse", "_tools", "_usage", "_written")

    def __init__(self, model: str, sse: bool = True) -> None:
        self._model = model
        self._sse = sse
        self._id = ""
        self._tools: dict[int, tuple[str, str, list[str]]] = {}
        self._usage: Usage | None = None
        self._written = False
        self._closed = False

    def _frame(self, obj: dict[str, Any], last: bool = False) -> bytes:
        payload = orjson.dumps(obj)
        if self._sse:
            return _frame_sse(payload)
        head = b"\r\n," if self._written else b"["
        self._written = True
        return head + payload + (b"]" if last else b"")

    def _chunk(self, part: dict[str, Any]) -> bytes:
        return self._frame(
            {
                "candidates": [{"content": {"parts": [part], "role": "model"}, "index": 0}],
                "modelVersion": self._model,
                "responseId": self._id,
            }
        )

    def feed(self, event: StreamEvent) -> bytes:
        if self._closed:
            return b""
        if isinstance(event, TextDelta):
            return self._chunk({"text": event.text}) if event.text else b""
        if isinstance(event, ThinkingDelta):
            part: dict[str, Any] = {"text": event.text, "thought": True}
            if event.signature and event.origin == ORIGIN:
                part["thoughtSignature"] = event.signature
            elif not event.text:
                return b""
            return self._chunk(part)
        if isinstance(event, ToolCallStart):
            self._tools[event.index] = (event.id, event.name, [])
            return b""
        if isinstance(event, ToolCallDelta):
            tool = self._tools.get(event.index)
            if tool is not None:
                tool[2].append(event.arguments)
            return b""
        if isinstance(event, BlockStop):
            call = self._tools.pop(event.index, None)
            if call is None:
                return b""
            args = _args_object("".join(call[2]), [])
            return self._chunk({"functionCall": {"id": call[0], "name": call[1], "args": args}})
        if isinstance(event, MessageStart):
            self._id = event.id
            if event.usage is not None:  # e.g. Anthropic's input count in message_start
                self._usage = Usage()
                self._usage.merge(event.usage)
            return b""
        if isinstance(event, UsageEvent):
            if self._usage is None:
                self._usage = Usage()
            self._usage.merge(event.usage)
            return b""
        if isinstance(event, MessageStop):
            self._closed = True
            final: dict[str, Any] = {
                "candidates": [
                    {
                        "content": {"parts": [{"text": ""}], "role": "model"},
                        "finishReason": STOP_TO_FINISH[event.stop_reason],
                        "index": 0,
                    }
                ],
                "modelVersion": self._model,
                "responseId": self._id,
            }
            if self._usage is not None:
                final["usageMetadata"] = _usage_metadata(self._usage)
            return self._frame(final, last=True)
        if isinstance(event, ErrorEvent):
            return self.error(event.error)
        return b""  # TextStart / ThinkingStart: Gemini has no block-open event

    def error(self, err: GatewayError) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        return self._frame(_error_body(err), last=True)


def make_renderer(model: str, sse: bool = True) -> GeminiStreamRenderer:
    """``sse=False`` renders ``streamGenerateContent`` without ``?alt=sse``: a JSON array whose
    elements are written as they come (``[{…}\\r\\n,{…}]``)."""
    return GeminiStreamRenderer(model, sse)


# ----------------------------------------------------------------------------- errors and models


def _error_body(err: GatewayError) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": err.status,
        "message": err.message,
        "status": KIND_TO_STATUS.get(err.kind, "INTERNAL"),
    }
    details: list[dict[str, Any]] = []
    if err.param:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": err.param, "description": err.message}],
            }
        )
    if err.retry_after is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{err.retry_after:g}s",
            }
        )
    if details:
        error["details"] = details
    return {"error": error}


def render_error(err: GatewayError) -> bytes:
    """``{"error": {"code", "message", "status"[, "details"]}}``; HTTP status is ``err.status``."""
    return orjson.dumps(_error_body(err))


def render_models(models: list[ModelInfo]) -> bytes:
    items: list[dict[str, Any]] = []
    for m in models:
        item: dict[str, Any] = {
            "name": f"models/{m.id}",
            "baseModelId": m.id,
            "version": "001",
            "displayName": m.display_name or m.id,
            "description": f"{m.native_id} served by {m.owned_by or m.backend}",
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        if m.context_window is not None:
            item["inputTokenLimit"] = m.context_window
        items.append(item)
    return orjson.dumps({"models": items})


def _scrub(message: str) -> str:
    return _SECRETS.sub("***", message)


def _retry_delay(details: list[Any]) -> float | None:
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


def _error_from_obj(status: int | None, error: dict[str, Any]) -> GatewayError:
    grpc = error.get("status") if isinstance(error.get("status"), str) else None
    code = error.get("code")
    if status is None:
        status = (
            code if isinstance(code, int) and code >= 400 else STATUS_TO_HTTP.get(grpc or "", 500)
        )
    message = error.get("message")
    message = (
        _scrub(message)
        if isinstance(message, str) and message
        else f"upstream returned HTTP {status}"
    )
    raw_details = error.get("details")
    details: list[Any] = raw_details if isinstance(raw_details, list) else []
    reason: str | None = None
    param: str | None = None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        if reason is None and isinstance(detail.get("reason"), str):
            reason = detail["reason"]
        violations = detail.get("fieldViolations")
        if (
            param is None
            and isinstance(violations, list)
            and violations
            and isinstance(violations[0], dict)
        ):
            field = violations[0].get("field")
            param = field if isinstance(field, str) else None
    kind = upstream_kind_for_status(status)
    client_status = client_status_for_upstream(status)
    if reason in AUTH_REASONS:  # Google says 400 for a bad key; it is *our* key that failed
        kind = ErrorKind.AUTHENTICATION
        client_status = client_status_for_upstream(401)
    return GatewayError(
        kind,
        message,
        status=client_status,
        param=param if kind is ErrorKind.INVALID_REQUEST else None,
        code=reason or grpc,
        retry_after=_retry_delay(details),
        upstream_status=status,
    )


def parse_error(status: int, body: bytes) -> GatewayError:
    """An upstream error response → :class:`GatewayError` (RetryInfo, when present, fills
    ``retry_after``; the caller may override it from headers)."""
    try:
        obj: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, list) and obj:  # streamGenerateContent without alt=sse wraps it in [ ]
        obj = obj[0]
    error = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(error, dict):
        return _error_from_obj(status, error)
    snippet = body[:200].decode("utf-8", "replace").strip()
    message = _scrub(f"upstream returned HTTP {status}" + (f": {snippet}" if snippet else ""))
    return GatewayError(
        upstream_kind_for_status(status),
        message,
        status=client_status_for_upstream(status),
        upstream_status=status,
    )


# ----------------------------------------------------------------------------- streaming: upstream → canonical


class GeminiStreamParser:
    """Gemini chunks → canonical events. Each chunk is a whole ``GenerateContentResponse``;
    text and thoughts arrive as deltas, function calls whole, the last chunk has
    ``finishReason``. Only candidate 0 is followed."""

    __slots__ = ("_done", "_ids", "_index", "_meta", "_open", "_started", "_tool_seen")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._index = -1
        self._open: str | None = None  # "text" | "thinking" while such a block is open
        self._ids = _Ids()
        self._meta: Any = None  # the latest usageMetadata; Gemini repeats it on every chunk
        self._tool_seen = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self._done:
            return []
        data = event.data.strip()
        if not data or data == "[DONE]":
            return []
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
        return self.feed_chunk(obj)

    def feed_chunk(self, obj: Any) -> list[StreamEvent]:
        """One decoded chunk (for JSON-array streams, which are not SSE)."""
        if self._done:
            return []
        if not isinstance(obj, dict):
            self._done = True
            return [
                ErrorEvent(
                    GatewayError(ErrorKind.UPSTREAM, "upstream sent a malformed stream chunk")
                )
            ]
        error = obj.get("error")
        if isinstance(error, dict):
            self._done = True
            return [ErrorEvent(_error_from_obj(None, error))]
        out: list[StreamEvent] = []
        meta = obj.get("usageMetadata")
        if meta is not None:
            self._meta = meta
        if not self._started:
            self._started = True
            start_usage = None
            if meta is not None:  # Gemini reports the prompt size from the first chunk
                first = _usage(meta)
                start_usage = Usage(
                    input_tokens=first.input_tokens, cache_read_tokens=first.cache_read_tokens
                )
            out.append(
                MessageStart(
                    id=str(obj.get("responseId") or ""),
                    model=str(obj.get("modelVersion") or ""),
                    usage=start_usage,
                )
            )
        finish: Any = None
        candidates = obj.get("candidates")
        if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
            candidate = candidates[0]
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(parts, list):
                for part in parts:
                    if isinstance(part, dict):
                        self._part(part, out)
            finish = candidate.get("finishReason")
        feedback = obj.get("promptFeedback")
        blocked = isinstance(feedback, dict) and feedback.get("blockReason") is not None
        if finish is not None or blocked:
            self._close(out)
            if self._meta is not None:
                out.append(UsageEvent(_usage(self._meta)))
            out.append(MessageStop(_stop(finish, self._tool_seen, blocked)))
            self._done = True
        return out

    def _close(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._index))
            self._open = None

    def _open_block(self, kind: str, out: list[StreamEvent]) -> int:
        self._close(out)
        self._index += 1
        self._open = kind
        out.append(TextStart(self._index) if kind == "text" else ThinkingStart(self._index))
        return self._index

    def _part(self, part: dict[str, Any], out: list[StreamEvent]) -> None:
        sig = part.get("thoughtSignature") or part.get("thought_signature")
        text = part.get("text")
        if part.get("thought") is True:
            index = self._index if self._open == "thinking" else self._open_block("thinking", out)
            if text or sig:
                out.append(ThinkingDelta(index, text or "", sig, ORIGIN))
            return
        if sig:  # a signature on a plain part: an empty thinking block just before it
            index = self._open_block("thinking", out)
            out.append(ThinkingDelta(index, "", sig, ORIGIN))
            self._close(out)
        if isinstance(text, str):
            if text:
                index = self._index if self._open == "text" else self._open_block("text", out)
                out.append(TextDelta(index, text))
            return
        call = part.get("functionCall") or part.get("function_call")
        if isinstance(call, dict):
            self._close(out)
            self._index += 1
            raw_name = call.get("name")
            name = raw_name if isinstance(raw_name, str) else ""
            args = call.get("args")
            out.append(ToolCallStart(self._index, self._ids.call(call.get("id"), name), name))
            out.append(
                ToolCallDelta(self._index, orjson.dumps(args if args is not None else {}).decode())
            )
            out.append(BlockStop(self._index))
            self._tool_seen = True
            return
        log.debug("gemini: dropped streamed part with fields %s", sorted(part))

    def finish(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [ErrorEvent(GatewayError(ErrorKind.UPSTREAM, "stream ended before completion"))]


def make_parser() -> GeminiStreamParser:
    return GeminiStreamParser()


# ----------------------------------------------------------------------------- stream watch (fast path)


def _json_line(line: bytes) -> Any:
    line = line.strip()
    if line.startswith(b"data:"):
        line = line[5:].strip()
    line = line.lstrip(b"[,").rstrip(b"],").strip()
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _line_at(buf: bytes, pos: int) -> bytes:
    start = buf.rfind(b"\n", 0, pos) + 1
    end = buf.find(b"\n", pos)
    return buf[start : end if end >= 0 else len(buf)]


class GeminiStreamWatch:
    """Scans a raw Gemini stream (SSE, or a JSON array with one element per line) for usage and
    the terminal chunk. Every Gemini chunk carries ``usageMetadata``, so the watch only
    remembers where the latest one is and decodes it when ``usage`` is read."""

    __slots__ = ("_buf", "_pending", "_usage", "complete")

    def __init__(self) -> None:
        self._buf = b""
        self._pending: bytes | None = None
        self._usage = Usage()
        self.complete = False

    @property
    def usage(self) -> Usage:
        if self._pending is not None:
            obj = _json_line(self._pending)
            self._pending = None
            if isinstance(obj, dict) and obj.get("usageMetadata") is not None:
                self._usage = _usage(obj["usageMetadata"])
        return self._usage

    @usage.setter
    def usage(self, value: Usage) -> None:
        self._pending = None
        self._usage = value

    def feed(self, chunk: bytes) -> None:
        if self.complete:
            return
        buf = self._buf + chunk if self._buf else chunk
        end = buf.rfind(b"\n")
        self._buf = buf[end + 1 :]
        if end >= 0:
            self._scan(buf[:end])
        tail = self._buf
        # A JSON-array stream may end without a newline; a partial line never parses.
        if (
            not self.complete
            and tail.rstrip().endswith(b"]")
            and isinstance(_json_line(tail), dict)
        ):
            self._scan(tail)

    def _scan(self, done: bytes) -> None:
        at = done.rfind(b'"usageMetadata"')
        if at >= 0:
            self._pending = _line_at(done, at)
        for marker in (b'"finishReason"', b'"blockReason"'):
            at = done.find(marker)
            while at >= 0:
                obj = _json_line(_line_at(done, at))
                if isinstance(obj, dict) and _is_terminal(obj):
                    self.complete = True
                    return
                at = done.find(marker, at + 1)


def _is_terminal(obj: dict[str, Any]) -> bool:
    candidates = obj.get("candidates")
    if isinstance(candidates, list):
        for c in candidates:
            if isinstance(c, dict) and c.get("finishReason"):
                return True
    feedback = obj.get("promptFeedback")
    return isinstance(feedback, dict) and feedback.get("blockReason") is not None


def make_watch() -> GeminiStreamWatch:
    return GeminiStreamWatch()


__all__ = [
    "CONTENT_TYPE_ARRAY",
    "CONTENT_TYPE_STREAM",
    "NAME",
    "GeminiStreamParser",
    "GeminiStreamRenderer",
    "GeminiStreamWatch",
    "build_request",
    "make_parser",
    "make_renderer",
    "make_watch",
    "parse_error",
    "parse_model_path",
    "parse_request",
    "parse_response",
    "render_error",
    "render_models",
    "render_response",
]
