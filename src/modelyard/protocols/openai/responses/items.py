"""Input items: checked and put in their canonical shape, then turned into core messages.

Canonical items are what ``GET /v1/responses/{id}/input_items`` lists and what a later turn
(``previous_response_id``, a conversation) resends: a string input becomes one user message
with an ``input_text`` part; each item gets an id; a type-less ``{role, content}`` item (the
Agents SDK's shape) becomes a ``message``. ``to_messages`` folds consecutive ``function_call``
items (and a reasoning item before them) into one assistant message with tool calls, because
every upstream wants one assistant turn per batch of parallel calls.

An ``item_reference`` (``{"type": "item_reference", "id": ...}``, or ``{"id": ...}`` alone:
the spec's type may be left out) is kept as ``{"type": "item_reference", "id": ...}`` until the
service puts the stored item in its place (``services.response_state``); ``to_messages``
passes over it. ``reference_positions`` finds them, within ``MAX_REFERENCES``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any, Final

from modelyard.core.chat import ContentPart, ImagePart, Message, TextPart, ToolCall
from modelyard.core.mcp import call_messages_text, function_name
from modelyard.protocols.openai.responses.request import JSON, ToolNames, fresh_item_id
from modelyard.protocols.validate import (
    bad,
    each,
    get_bool,
    get_dict,
    get_list,
    get_str,
    require_dict,
)

_ROLES: Final = ("user", "system", "developer", "assistant")
_ITEM_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "message": frozenset({"type", "id", "role", "content", "status", "phase"}),
    "function_call": frozenset(
        {"type", "id", "call_id", "name", "arguments", "status", "namespace", "caller"}
    ),
    "function_call_output": frozenset({"type", "id", "call_id", "output", "status", "caller"}),
    "reasoning": frozenset({"type", "id", "summary", "content", "encrypted_content", "status"}),
    # The gateway's MCP items, sent back by clients that resend a response's output.
    "mcp_list_tools": frozenset({"type", "id", "server_label", "tools", "error"}),
    "mcp_call": frozenset(
        {
            "type",
            "id",
            "server_label",
            "name",
            "arguments",
            "output",
            "error",
            "status",
            "approval_request_id",
        }
    ),
    "mcp_approval_request": frozenset({"type", "id", "server_label", "name", "arguments"}),
    "mcp_approval_response": frozenset({"type", "id", "approval_request_id", "approve", "reason"}),
}
ITEM_TYPES: Final = tuple(_ITEM_KEYS)
_ID_PREFIX: Final[Mapping[str, str]] = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
}
_TEXT_FILES: Final = ("text/", "application/json")
REFERENCE: Final = "item_reference"
# References per request (input, or a conversation's items): each is one id in one indexed
# query and may bring back an item as large as the request that first sent it, so the count
# bounds both the query and how much a small body can grow into. Agents resend an item or two
# by id; a long history goes by ``previous_response_id`` or ``conversation`` instead.
MAX_REFERENCES: Final = 100
# The longest item id a client may send: the store's width for an item id (conversation items,
# the reference index). The gateway's ids and OpenAI's are about 50 characters.
ITEM_ID_CHARS: Final = 64
_TYPE: Final = itemgetter("type")


def canonical_items(raw: Any, param: str = "input") -> list[JSON]:
    """The ``input`` field (or a conversation's ``items``) as canonical items (400 naming the
    item on anything unknown)."""
    if isinstance(raw, str):
        return [_message_item("user", [{"type": "input_text", "text": raw}], None)]
    if not isinstance(raw, list):
        raise bad(param, "must be a string or an array of input items")
    return each(raw, param, _item)


def reference_positions(items: list[JSON], param: str = "input") -> tuple[int, ...]:
    """Where ``items`` holds references (a 400 beyond ``MAX_REFERENCES``)."""
    if REFERENCE not in map(_TYPE, items):  # most requests have none: looked for in C
        return ()
    at = tuple(i for i, item in enumerate(items) if item["type"] == REFERENCE)
    if len(at) > MAX_REFERENCES:
        raise bad(
            param,
            f"at most {MAX_REFERENCES} item_reference items per request; got {len(at)} (send "
            "a long history with previous_response_id or conversation)",
        )
    return at


def _message_item(role: str, content: list[JSON], item_id: str | None) -> JSON:
    return {
        "type": "message",
        "id": item_id or fresh_item_id("msg"),
        "role": role,
        "content": content,
        "status": "completed",
    }


# An item and its parts are read with field paths relative to themselves (``content[1].text``);
# ``each`` names the item (``input[3]``) only in an error: a valid request builds no path.


def _item(raw: Any) -> JSON:
    obj = require_dict(raw, "")
    kind = _kind(obj)
    if kind == REFERENCE:
        return _reference(obj)
    if kind not in _ITEM_KEYS:
        raise bad(
            "type",
            f"unknown or unsupported input item type {kind!r}; accepted: {', '.join(ITEM_TYPES)}",
        )
    if not _ITEM_KEYS[kind].issuperset(obj):  # the fields out of place, sorted only then
        unknown = sorted(set(obj) - _ITEM_KEYS[kind])
        raise bad(unknown[0], f"unknown field of a {kind} item")
    item_id = _item_id(obj)
    if kind.startswith("mcp_"):
        return _mcp_item(obj, kind, item_id)
    if kind == "message":
        role = get_str(obj, "role", "role", required=True) or ""
        if role not in _ROLES:
            raise bad("role", f"must be one of {', '.join(_ROLES)}; got {role!r}")
        return _message_item(role, _content(obj.get("content"), role), item_id)
    out: JSON = {"type": kind, "id": item_id or fresh_item_id(_ID_PREFIX.get(kind, "rs"))}
    if kind == "reasoning":
        out["summary"] = _texts(obj, "summary", "summary_text")
        if obj.get("content") is not None:
            out["content"] = _texts(obj, "content", "reasoning_text")
        out["encrypted_content"] = get_str(obj, "encrypted_content", "encrypted_content")
        return out
    out["call_id"] = get_str(obj, "call_id", "call_id", required=True)
    if kind == "function_call":
        out["name"] = get_str(obj, "name", "name", required=True)
        out["arguments"] = get_str(obj, "arguments", "arguments", required=True)
        namespace = get_str(obj, "namespace", "namespace")
        if namespace:
            out["namespace"] = namespace
    else:
        out["output"] = _output(obj.get("output"))
    out["status"] = "completed"
    return out


def _kind(obj: JSON) -> str:
    """An item's type; without one, a message (it has a role) or a reference (an id alone:
    the spec's ``item_reference`` may leave its type out)."""
    kind = obj.get("type")
    if kind is not None:
        return str(kind)
    if "role" in obj:
        return "message"
    if "id" in obj:
        return REFERENCE
    raise bad("type", "is required (or a role, for a message)")


def _reference(obj: JSON) -> JSON:
    extra = sorted(set(obj) - {"type", "id"})
    if extra:
        raise bad(extra[0], "unknown field of an item_reference item; accepted: type, id")
    item_id = _item_id(obj)
    if item_id is None:
        raise bad("id", "is required")
    if not item_id:
        raise bad("id", "must be the id of a stored item")
    return {"type": REFERENCE, "id": item_id}


def _item_id(obj: JSON) -> str | None:
    item_id = get_str(obj, "id", "id")
    if item_id is not None and len(item_id) > ITEM_ID_CHARS:
        raise bad("id", f"must be at most {ITEM_ID_CHARS} characters; got {len(item_id)}")
    return item_id


def _mcp_item(obj: JSON, kind: str, item_id: str | None) -> JSON:
    out: JSON = {"type": kind, "id": item_id or fresh_item_id("mcpr")}
    if kind == "mcp_approval_response":
        out["approval_request_id"] = get_str(
            obj, "approval_request_id", "approval_request_id", required=True
        )
        approve = get_bool(obj, "approve", "approve")
        if approve is None:
            raise bad("approve", "is required (true or false)")
        out["approve"] = approve
        out["reason"] = get_str(obj, "reason", "reason")
        return out
    out["server_label"] = get_str(obj, "server_label", "server_label", required=True)
    if kind == "mcp_list_tools":
        out["tools"] = get_list(obj, "tools", "tools") or []
        out["error"] = get_str(obj, "error", "error")
        return out
    out["name"] = get_str(obj, "name", "name", required=True)
    out["arguments"] = get_str(obj, "arguments", "arguments") or ""
    if kind == "mcp_call":
        out["output"] = get_str(obj, "output", "output")
        out["error"] = get_dict(obj, "error", "error")
        out["status"] = "failed" if out["error"] else "completed"
        out["approval_request_id"] = get_str(obj, "approval_request_id", "approval_request_id")
    return out


def _texts(obj: JSON, key: str, kind: str) -> list[JSON]:
    """A reasoning item's ``summary`` or ``content``: parts of type ``kind``."""

    def text(part: Any) -> JSON:
        p = require_dict(part, "")
        if p.get("type") != kind:
            raise bad("type", f"must be {kind!r}")
        return {"type": kind, "text": get_str(p, "text", "text") or ""}

    return each(get_list(obj, key, key) or [], key, text)


def _output(raw: Any) -> str | list[JSON]:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return each(raw, "output", _input_part)
    raise bad("output", "must be a string or an array of content parts")


def _content(raw: Any, role: str) -> list[JSON]:
    text_type = "output_text" if role == "assistant" else "input_text"
    if isinstance(raw, str):
        part: JSON = {"type": text_type, "text": raw}
        if role == "assistant":
            part["annotations"], part["logprobs"] = [], []
        return [part]
    if not isinstance(raw, list):
        raise bad("content", "must be a string or an array of content parts")
    return each(raw, "content", _output_part if role == "assistant" else _input_part)


def _input_part(raw: Any) -> JSON:
    """A part of a user, system or developer message, or of a function call's output."""
    return _part(raw, assistant=False)


def _output_part(raw: Any) -> JSON:
    """A part of an assistant message."""
    return _part(raw, assistant=True)


def _part(raw: Any, *, assistant: bool) -> JSON:
    obj = require_dict(raw, "")
    kind = get_str(obj, "type", "type", required=True)
    if kind in ("input_text", "output_text"):
        out: JSON = {"type": kind, "text": get_str(obj, "text", "text", required=True)}
        if kind == "output_text":
            out["annotations"] = obj.get("annotations") or []
            out["logprobs"] = obj.get("logprobs") or []
        return out
    if kind == "refusal":
        return {"type": kind, "refusal": get_str(obj, "refusal", "refusal") or ""}
    if kind == "input_image" and not assistant:
        if obj.get("file_id") is not None:
            raise bad("file_id", "file ids are not supported; send image_url")
        url = get_str(obj, "image_url", "image_url", required=True)
        return {"type": kind, "image_url": url, "detail": obj.get("detail") or "auto"}
    if kind == "input_file" and not assistant:
        return _file(obj)
    accepted = "output_text, refusal" if assistant else "input_text, input_image, input_file"
    raise bad("type", f"content part type {kind!r} is not supported here; accepted: {accepted}")


def _file(obj: JSON) -> JSON:
    """A file inline as a ``data:`` URL: images and text files are carried; others refused."""
    data = get_str(obj, "file_data", "file_data")
    if data is None:
        raise bad("file_data", "only inline files (file_data, a data: URL) are supported")
    mime = data[5 : data.find(";")] if data.startswith("data:") and ";base64," in data else ""
    if not (mime.startswith("image/") or mime.startswith(_TEXT_FILES)):
        raise bad(
            "file_data",
            f"file type {mime or 'unknown'!r} is not supported; accepted: images and text files "
            "as base64 data: URLs",
        )
    if not mime.startswith("image/") and _text_of(data) is None:
        raise bad("file_data", "is not a valid base64 data: URL")
    return {"type": "input_file", "file_data": data, "filename": obj.get("filename")}


def to_messages(items: Iterable[JSON], names: ToolNames) -> list[Message]:
    """Canonical items as core messages, in order."""
    messages: list[Message] = []
    pending: Message | None = None  # the assistant turn being assembled
    reasoning: tuple[str, str | None] | None = None
    for item in items:
        kind = item["type"]
        if kind == "reasoning":
            text = "".join(p["text"] for p in item.get("content") or item["summary"])
            reasoning = (text, item.get("encrypted_content"))
            continue
        if kind.startswith("mcp_") or kind == REFERENCE:
            if kind == "mcp_call":  # a call the gateway ran: the model's call and its result
                name = function_name(item["server_label"], item["name"])
                call = ToolCall(item["id"], name, item["arguments"])
                messages.append(Message("assistant", tool_calls=(call,)))
                text = call_messages_text(item)
                messages.append(Message("tool", (TextPart(text),), tool_call_id=item["id"]))
            # listings, approval requests and answers are the gateway's business, not the model's
            pending = None
            reasoning = None
            continue
        if kind == "function_call":
            call = ToolCall(
                item["call_id"], names.join(item.get("namespace"), item["name"]), item["arguments"]
            )
            if pending is None:
                pending = Message("assistant")
                messages.append(pending)
            pending.tool_calls = (*pending.tool_calls, call)
        elif kind == "function_call_output":
            pending = None
            messages.append(Message("tool", _parts(item["output"]), tool_call_id=item["call_id"]))
        else:
            pending = None
            content, role = item["content"], item["role"]
            refusal = _refusal(content) if role == "assistant" else None
            messages.append(Message(role, _parts(content), refusal=refusal))
            if role == "assistant":
                pending = messages[-1]
        if reasoning is not None and pending is not None and pending.reasoning is None:
            pending.reasoning, pending.reasoning_signature = reasoning
        reasoning = None  # reasoning belongs to the assistant turn right after it
    return messages


def _parts(content: str | list[JSON]) -> tuple[ContentPart, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    out: list[ContentPart] = []
    for part in content:
        kind = part["type"]
        if kind in ("input_text", "output_text"):
            out.append(TextPart(part["text"]))
        elif kind == "refusal":
            continue  # the message's refusal (``_refusal``)
        elif kind == "input_image":
            out.append(ImagePart(part["image_url"], part.get("detail")))
        else:
            out.append(_file_part(part["file_data"]))
    return tuple(out)


def _refusal(content: str | list[JSON]) -> str | None:
    """An assistant message's ``refusal`` parts (a turn that declined) as its refusal: an
    upstream that has the field gets it as such, any other as the turn's text."""
    if isinstance(content, str):
        return None
    found = [part["refusal"] for part in content if part["type"] == "refusal"]
    return "".join(found) if found else None


def _file_part(data: str) -> ContentPart:
    if data.startswith("data:image/"):
        return ImagePart(data)
    text = _text_of(data)
    if text is None:  # checked when the item was read (``_file``): a stored item is sound
        raise bad("input_file.file_data", "is not a valid base64 data: URL")
    return TextPart(text)


def _text_of(data: str) -> str | None:
    """A text file's content from its base64 ``data:`` URL; None when it does not decode."""
    try:
        return base64.b64decode(data.split(",", 1)[1]).decode("utf-8", "replace")
    except (binascii.Error, IndexError):
        return None
