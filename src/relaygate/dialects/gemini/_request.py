"""Gemini requests: client bodies and model paths → :class:`Request`, and :class:`Request` → upstream bodies."""

from __future__ import annotations

import logging
from typing import Any

from relaygate.canonical import (
    ContentPart,
    Message,
    Request,
    ResponseFormat,
    Role,
    TextPart,
    ThinkingConfig,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    invalid,
)
from relaygate.dialects._common import set_fields
from relaygate.dialects.gemini._parts import _Ids, _parse_parts, _render_parts
from relaygate.dialects.gemini._shared import _dict, _g, _integer, _list, _number, _str
from relaygate.dialects.gemini._tables import (
    _EXTRA_ALIASES,
    _GENERATION_ALIASES,
    _GENERATION_FIELDS,
    _TOP_ALIASES,
    _TOP_LEVEL,
    CANONICAL_TO_ROLE,
    CHOICE_TO_MODE,
    EFFORT_TO_BUDGET,
    EFFORT_TO_LEVEL,
    LEVEL_MODELS,
    LEVEL_TO_EFFORT,
    METHODS,
    MODE_TO_CHOICE,
    NAME,
    ROLE_TO_CANONICAL,
    SAMPLING_TO_WIRE,
)

log = logging.getLogger(__name__)


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
    if mode == "VALIDATED":  # only Gemini can say it
        extras["functionCallingConfig"] = fcc
    allowed = [_str(n, "toolConfig.functionCallingConfig.allowedFunctionNames") for n in names]
    return ToolChoice(mode=MODE_TO_CHOICE[mode], names=allowed or None)


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
    return ThinkingConfig(
        # Gemini thinks by default but only shows thoughts when asked
        include_thoughts=include is True,
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
        else:
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
        elif choice.names and choice.mode != "none":
            fcc["allowedFunctionNames"] = list(choice.names)
        if choice.parallel is not None:
            dropped.append("tool_choice.parallel")
        body["toolConfig"] = {"functionCallingConfig": fcc}
    generation: dict[str, Any] = {}
    set_fields(request, generation, SAMPLING_TO_WIRE)
    fmt = request.response_format
    if fmt is not None:
        generation["responseMimeType"] = "text/plain" if fmt.type == "text" else "application/json"
        if fmt.type == "json_schema":
            generation["responseJsonSchema"] = fmt.schema if fmt.schema is not None else {}
        if fmt.name is not None or fmt.strict is not None:
            dropped.append("response_format.name/strict")
    native = request.source_dialect == NAME
    if request.thinking is not None:
        include = request.thinking.include_thoughts is not False
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
