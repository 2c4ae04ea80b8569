"""Decode Gemini ``contents`` and ``systemInstruction`` into core messages.

Roles: ``user`` (or no role) → user, ``model`` → assistant. Parts:

* ``text`` → text; on a model turn a part with ``thought: true`` (a thought summary) → reasoning.
* ``inlineData`` with an ``image/*`` type → an image as a ``data:`` URL; ``fileData`` with an
  ``image/*`` type → an image by its URI. Other media (PDF, audio, video) have no core part yet:
  a 400 naming the part.
* ``functionCall`` (model turn) → a tool call; its ``id`` is kept, or one is made
  (``call_<hex>``). ``functionResponse`` (user turn) → a tool message answering the call with
  the same ``id``, or else the earliest unanswered call of that function name. A response of
  exactly ``{"output": "<text>"}`` is sent as that text (what Gemini itself advises wrapping a
  plain result in); any other response as its JSON text.
* ``thoughtSignature`` is accepted and not carried: only Gemini reads it, and the call ids this
  gateway gives out already carry a Gemini upstream's signatures back to it.
* ``executableCode``, ``codeExecutionResult``, ``videoMetadata`` and anything else: a 400.

A user turn's function responses become tool messages placed before a user message holding the
turn's other parts, the order every chat API expects.

A content and its parts are read with field paths relative to themselves (``parts[1].text``,
``functionCall.name``); the loop over a list names the element (``contents[3]``) only in an
error (``validate.nested``): a valid request builds no path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelyard.core.chat import ContentPart, ImagePart, Message, TextPart, ToolCall
from modelyard.core.errors import InvalidRequest
from modelyard.protocols.gemini.fields import fields
from modelyard.protocols.validate import bad, each, get_bool, get_dict, get_list, get_str, nested

_IGNORED = frozenset({"thoughtSignature", "thought"})
_PART_KINDS = "text, inlineData, fileData, functionCall, functionResponse"


@dataclass(slots=True)
class _Calls:
    """Calls made so far that no function response has answered yet, in order."""

    open: list[ToolCall] = field(default_factory=list)

    def answer(self, call_id: str | None, name: str) -> str:
        for i, call in enumerate(self.open):
            if (call.id == call_id) if call_id else (call.name == name):
                return self.open.pop(i).id
        if call_id:
            return call_id  # the client's own id for a call made outside this history
        raise bad(
            "functionResponse.name",
            f"answers function {name!r}, but no earlier functionCall of that name is open; "
            "send the call's id",
        )


def system_message(raw: Any) -> Message | None:
    """``systemInstruction`` (a content whose parts are text) as one system message."""
    if raw is None:
        return None
    if isinstance(raw, str):  # the SDKs accept a plain string too
        return Message("system", (TextPart(raw),)) if raw else None
    content = fields(raw, "systemInstruction")
    items = get_list(content, "parts", "systemInstruction.parts") or []
    parts: list[ContentPart] = [
        TextPart(text) for text in each(items, "systemInstruction.parts", _system_text) if text
    ]
    return Message("system", tuple(parts)) if parts else None


def _system_text(raw: Any) -> str:
    part = fields(raw, "")
    text = get_str(part, "text", "text")
    if text is None:
        raise bad("", "must be a text part: system instructions take text only")
    return text


def contents_messages(raw: list[Any]) -> list[Message]:
    """The core messages for ``contents``, in order."""
    messages: list[Message] = []
    calls = _Calls()
    for i, item in enumerate(raw):
        try:
            _turn(item, calls, messages)
        except InvalidRequest as exc:  # a field of the content: named whole only now
            raise nested(f"contents[{i}]", exc) from None
    return messages


def _turn(raw: Any, calls: _Calls, messages: list[Message]) -> None:
    """One content's messages, added to ``messages``."""
    content = fields(raw, "")
    role = get_str(content, "role", "role") or "user"
    parts = get_list(content, "parts", "parts", required=True) or []
    if role == "model":
        messages.append(_model_turn(parts, calls))
    elif role in ("user", "function"):
        messages.extend(_user_turn(parts, calls))
    else:
        raise bad("role", f"must be 'user' or 'model'; got {role!r}")


def _user_turn(parts: list[Any], calls: _Calls) -> list[Message]:
    results: list[Message] = []
    content: list[ContentPart] = []
    for i, item in enumerate(parts):
        try:
            part = fields(item, "")
            kind = _kind(part)
            if kind == "text":
                content.append(TextPart(part["text"]))
            elif kind == "functionResponse":
                results.append(_function_response(part["functionResponse"], calls))
            elif kind in ("inlineData", "fileData"):
                content.append(_media(part[kind], kind))
            else:
                raise bad(kind, "is only allowed in a model turn")
        except InvalidRequest as exc:
            raise nested(f"parts[{i}]", exc) from None
    if content:
        results.append(Message("user", tuple(content)))
    return results


def _model_turn(parts: list[Any], calls: _Calls) -> Message:
    texts: list[str] = []
    thoughts: list[str] = []
    tool_calls: list[ToolCall] = []
    for i, item in enumerate(parts):
        try:
            part = fields(item, "")
            kind = _kind(part)
            if kind == "text":
                (thoughts if get_bool(part, "thought", "thought") else texts).append(part["text"])
            elif kind == "functionCall":
                call = _function_call(part["functionCall"])
                calls.open.append(call)
                tool_calls.append(call)
            else:
                raise bad(kind, "is not allowed in a model turn (text and functionCall are)")
        except InvalidRequest as exc:
            raise nested(f"parts[{i}]", exc) from None
    text = "".join(texts)
    return Message(
        "assistant",
        content=(TextPart(text),) if text else (),
        tool_calls=tuple(tool_calls),
        reasoning="".join(thoughts) if thoughts else None,
    )


def _kind(part: dict[str, Any]) -> str:
    """The part's one data field (``text``, ``functionCall``, ...), validated."""
    kinds = [k for k in part if k not in _IGNORED]
    if len(kinds) != 1:
        raise bad("", f"must hold exactly one of {_PART_KINDS}; got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    if kind == "text":
        get_str(part, "text", "text", required=True)
    elif kind not in ("functionCall", "functionResponse", "inlineData", "fileData"):
        raise bad(kind, f"is not supported; parts may be {_PART_KINDS}")
    return kind


def _media(raw: Any, kind: str) -> ImagePart:
    """``inlineData`` or ``fileData`` (``kind``) holding an image."""
    try:
        media = fields(raw, "")
        mime = get_str(media, "mimeType", "mimeType", required=True) or ""
        if not mime.startswith("image/"):
            raise bad("mimeType", f"only images (image/*) are supported; got {mime!r}")
        if kind == "inlineData":
            data = get_str(media, "data", "data", required=True)
            return ImagePart(f"data:{mime};base64,{data}")
        return ImagePart(get_str(media, "fileUri", "fileUri", required=True) or "")
    except InvalidRequest as exc:
        raise nested(kind, exc) from None


def _function_call(raw: Any) -> ToolCall:
    call = fields(raw, "functionCall")
    name = get_str(call, "name", "functionCall.name", required=True) or ""
    args = get_dict(call, "args", "functionCall.args") or {}
    call_id = get_str(call, "id", "functionCall.id") or "call_" + uuid.uuid4().hex[:24]
    return ToolCall(call_id, name, orjson.dumps(args).decode())


def _function_response(raw: Any, calls: _Calls) -> Message:
    response = fields(raw, "functionResponse")
    name = get_str(response, "name", "functionResponse.name", required=True) or ""
    if response.get("parts"):
        raise bad("functionResponse.parts", "multimodal function responses are not supported")
    value = get_dict(response, "response", "functionResponse.response", required=True) or {}
    call_id = calls.answer(get_str(response, "id", "functionResponse.id"), name)
    output = value.get("output")
    text = output if len(value) == 1 and isinstance(output, str) else orjson.dumps(value).decode()
    return Message("tool", (TextPart(text),), name=name, tool_call_id=call_id)
