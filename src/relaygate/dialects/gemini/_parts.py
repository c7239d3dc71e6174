"""Gemini ``parts`` ↔ canonical content parts, both directions (requests and responses share them)."""

from __future__ import annotations

import logging
import mimetypes
from collections import deque
from typing import Any

from relaygate.canonical import (
    ContentPart,
    DocumentPart,
    ImagePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from relaygate.dialects._common import arguments_object, json_text
from relaygate.dialects.gemini._shared import _dict, _g, _list, _str
from relaygate.dialects.gemini._tables import _SAFE_ID, _SYNTH_ID, ORIGIN

log = logging.getLogger(__name__)


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
) -> tuple[list[TextPart | ImagePart | DocumentPart], bool]:
    content: list[TextPart | ImagePart | DocumentPart] = []
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
            content.append(TextPart(json_text(response)))
    for j, blob in enumerate(_list(blobs, f"{param}.parts") if blobs is not None else ()):
        media = _parse_blob(_dict(blob, f"{param}.parts[{j}]"), f"{param}.parts[{j}]")
        if media is not None:
            content.append(media)
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
            out.append(ToolCallPart(ids.call(call.get("id"), name), name, json_text(args)))
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


# ----------------------------------------------------------------------------- parts: canonical → wire


def _args_object(arguments: str, dropped: list[str]) -> dict[str, Any]:
    args = arguments_object(arguments)
    if args is not None:
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
            if isinstance(p, ImagePart | DocumentPart)
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
