"""Core messages to Gemini ``contents`` and ``systemInstruction``.

Gemini knows two roles, ``user`` and ``model``, and wants turns to alternate, so consecutive
messages that map to the same role are merged into one turn. System and developer messages all
go to ``systemInstruction`` (Gemini has one, so their position in the conversation is lost;
mid-conversation system messages join it too), their text blocks joined with a blank line.
Tool results are ``functionResponse`` parts in a user turn; Gemini matches them to calls by
function *name*, which is recovered from the earlier assistant call with the same id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from modelyard.core.chat import DocumentPart, ImagePart, Message, TextPart
from modelyard.core.errors import InvalidRequest, UnsupportedCapability
from modelyard.providers.documents import PDF, document_text, inline_pdf
from modelyard.providers.gemini.tool_ids import signature_of

Part = dict[str, Any]
Content = dict[str, Any]

_DATA_URL = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.S
)


def build_contents(messages: Sequence[Message], model: str) -> tuple[list[Content], Content | None]:
    """``(contents, systemInstruction)``; the second is None when there is no system text."""
    system: list[Part] = []
    contents: list[Content] = []
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if message.role in ("system", "developer"):
            system.extend(_system_parts(message, param))
            continue
        role, parts = _turn(message, param, model, call_names)
        if not parts:
            continue  # Gemini rejects empty turns; an empty message says nothing anyway
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents, ({"parts": system} if system else None)


def _turn(
    message: Message, param: str, model: str, call_names: dict[str, str]
) -> tuple[str, list[Part]]:
    if message.role == "user":
        return "user", _user_parts(message, param, model)
    if message.role == "assistant":
        return "model", _model_parts(message, param, call_names)
    return "user", [_function_response(message, param, call_names)]


def _system_parts(message: Message, param: str) -> list[Part]:
    if message.has_images():
        raise InvalidRequest(
            "Gemini takes only text in system instructions", param=f"{param}.content"
        )
    text = message.block_text()
    return [{"text": text}] if text else []


def _user_parts(message: Message, param: str, model: str) -> list[Part]:
    parts: list[Part] = []
    for j, part in enumerate(message.content):
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, DocumentPart):
            parts.append(_document(part, f"{param}.content[{j}]", model))
        else:
            parts.append(_image(part, f"{param}.content[{j}].image_url.url", model))
    return parts


def _document(part: DocumentPart, param: str, model: str) -> Part:
    """A text document as text; an inline PDF as inline data."""
    if part.text is not None:
        return {"text": document_text(part)}
    return {"inlineData": {"mimeType": PDF, "data": inline_pdf(part, param, model)}}


def _image(part: ImagePart, param: str, model: str) -> Part:
    url = part.url
    if url.startswith(("http://", "https://")):
        # Gemini fetches no arbitrary URLs, and the gateway must not fetch on a client's behalf.
        raise UnsupportedCapability("image URLs (send base64 data: URLs)", model, param=param)
    match = _DATA_URL.fullmatch(url)
    if match is None or ";base64" not in match["params"].lower():
        raise InvalidRequest(
            "images must be base64 data: URLs such as data:image/png;base64,...", param=param
        )
    return {"inlineData": {"mimeType": match["mime"].lower(), "data": match["data"]}}


def _model_parts(message: Message, param: str, call_names: dict[str, str]) -> list[Part]:
    if message.refusal is not None:  # no refusal in this dialect: what it said, as text
        message = message.refusal_as_text()
    if message.has_images():
        raise InvalidRequest(
            "Gemini takes no images in assistant messages", param=f"{param}.content"
        )
    parts: list[Part] = []
    text = message.text()
    if text:
        parts.append({"text": text})
    for j, call in enumerate(message.tool_calls):
        call_names[call.id] = call.name
        args = _arguments(call.arguments, f"{param}.tool_calls[{j}].function.arguments")
        part: Part = {"functionCall": {"name": call.name, "args": args}}
        signature = signature_of(call.id)
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _arguments(text: str, param: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("tool call arguments are not valid JSON", param=param) from exc
    if not isinstance(value, dict):
        raise InvalidRequest("tool call arguments must be a JSON object", param=param)
    return value


def _function_response(message: Message, param: str, call_names: dict[str, str]) -> Part:
    if message.has_images():
        raise InvalidRequest("Gemini takes no images in tool results", param=f"{param}.content")
    call_id = message.tool_call_id or ""
    name = call_names.get(call_id) or message.name
    if not name:
        raise InvalidRequest(
            f"the tool message {param} answers tool call {call_id!r}, which no earlier "
            "assistant message made; Gemini needs the called function's name",
            param=f"{param}.tool_call_id",
        )
    return {"functionResponse": {"name": name, "response": _response_value(message.text())}}


def _response_value(text: str) -> dict[str, Any]:
    """Gemini wants a JSON object; anything else goes under ``output``, as its docs advise."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"output": text}
    return value if isinstance(value, dict) else {"output": value}
