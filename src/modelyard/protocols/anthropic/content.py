"""Decode the Messages API's turns and content blocks into core messages.

One turn may become several core messages: a user turn's ``tool_result`` blocks become ``tool``
messages (in their order), placed before a user message holding the turn's other blocks, which
is the order every chat API expects (results answer the previous assistant turn; the user then
speaks). An assistant turn becomes one message: its text, its ``tool_use`` blocks as tool calls
and its ``thinking`` as reasoning.

A ``system`` turn inside ``messages`` (mid-conversation system messages) becomes a core system
message where it stands; each upstream adapter places or folds it.

``cache_control`` on a text or image block, a system block or a tool result is carried as the
part's (or the tool message's) ``CacheMark``; a top-level ``cache_control`` (automatic caching)
travels as an extra field.

An assistant turn holding blocks the core does not model (``redacted_thinking``, server-tool
blocks such as ``server_tool_use`` and ``web_search_tool_result``, text with ``citations``, a
``cache_control`` on ``tool_use`` or ``thinking``) is also kept whole, as the client wrote it
(``Message.native``): an Anthropic upstream gets the turn unchanged, with every block in its
place, which the API requires of the thinking blocks of a tool loop's last assistant turn.

Lossy points, decided here, for upstreams of other APIs:

* ``cache_control`` on ``tool_use`` and ``thinking`` blocks has no core counterpart there; the
  breakpoints on the turns around it still are carried.
* ``is_error`` on a tool result has no core counterpart; the result's text is prefixed with
  ``ERROR_PREFIX`` so the model of any target still learns that the call failed.
* ``redacted_thinking`` is left out: its data is encrypted, readable by no other model (the
  same model behind another cloud's API reads it back: its adapter translates it). Signed
  ``thinking`` keeps its signature.
* Server-tool blocks are left out (another vendor has no record of the server's call); the
  turn's text stays, without its ``citations``.
* A tool-use ``input`` of exactly ``{"_raw": "<text>"}`` is the encoder's wrapping of arguments
  that were not valid JSON; it is unwrapped back to that text, so a round trip is lossless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from modelyard.core.chat import (
    CacheMark,
    ContentPart,
    DocumentPart,
    ImagePart,
    Message,
    Native,
    TextPart,
    ToolCall,
)
from modelyard.core.errors import InvalidRequest
from modelyard.protocols.validate import (
    bad,
    each,
    get_bool,
    get_dict,
    get_str,
    require_dict,
)

DIALECT = "anthropic"
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
ERROR_PREFIX = "Error: "
RAW_INPUT_KEY = "_raw"
_USER_BLOCKS = "text, image, document, tool_result"
_DOCUMENT_SOURCES = ("base64", "text", "url", "content", "file")
_ASSISTANT_BLOCKS = (
    "text, tool_use, thinking, redacted_thinking, server_tool_use, mcp_tool_use, "
    "mcp_tool_result, container_upload, *_tool_result (a server tool's result)"
)
# Blocks the core does not model (encrypted thinking, the server's own tools' calls and
# results): they go back only to an Anthropic upstream, with their turn whole (``Message.native``).
_SERVER_BLOCKS = frozenset(
    {"redacted_thinking", "server_tool_use", "mcp_tool_use", "mcp_tool_result", "container_upload"}
)
_SERVER_RESULT_SUFFIX = "_tool_result"
_RESULT_BLOCKS = "text, image"
_CACHE_TTLS = ("5m", "1h")


def turn_messages(raw: Any) -> list[Message]:
    """The core messages for one turn of ``messages``; an error names its field relative to the
    turn (``content[0].text``): the caller prefixes the turn's own path (``validate.nested``)."""
    obj = require_dict(raw, "")
    role = get_str(obj, "role", "role", required=True)
    if role not in ("user", "assistant", "system"):
        raise bad("role", f"must be 'user', 'assistant' or 'system'; got {role!r}")
    content = obj.get("content")
    if role == "system":
        message = system_message(content, "content")
        if message is None:
            raise bad("content", "must not be empty")
        return [message]
    if isinstance(content, str):
        return [Message("user" if role == "user" else "assistant", (TextPart(content),))]
    if not isinstance(content, list):
        raise bad("content", "must be a string or an array of content blocks")
    if not content:
        raise bad("content", "must contain at least one content block")
    if role == "user":
        return _user_turn(content)
    return [_assistant_turn(content)]


def system_message(raw: Any, param: str = "system") -> Message | None:
    """The top-level ``system`` or a system turn's content (a string or text blocks) as one
    system message, one text part per block (with its cache breakpoint)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return Message("system", (TextPart(raw),)) if raw else None
    if not isinstance(raw, list):
        raise bad(param, "must be a string or an array of text blocks")
    parts: list[ContentPart] = each(raw, param, _system_block)
    return Message("system", tuple(parts)) if parts else None


# Blocks are read with field paths relative to themselves (``text``, ``source.type``); the
# loop over a list of them names the block (``content[2]``) only in an error.


def _system_block(raw: Any) -> TextPart:
    block = require_dict(raw, "")
    kind = get_str(block, "type", "type", required=True)
    if kind != "text":
        raise bad("type", f"must be 'text'; got {kind!r}")
    return _text(block)


def cache_mark(block: dict[str, Any]) -> CacheMark | None:
    """A block's ``cache_control`` (``{"type": "ephemeral", "ttl"?: "5m" | "1h"}``)."""
    raw = get_dict(block, "cache_control", "cache_control")
    if raw is None:
        return None
    kind = get_str(raw, "type", "cache_control.type", required=True)
    if kind != "ephemeral":
        raise bad("cache_control.type", f"must be 'ephemeral'; got {kind!r}")
    ttl = get_str(raw, "ttl", "cache_control.ttl")
    if ttl is not None and ttl not in _CACHE_TTLS:
        raise bad("cache_control.ttl", f"must be one of {', '.join(_CACHE_TTLS)}")
    return CacheMark(ttl)


def _user_turn(blocks: list[Any]) -> list[Message]:
    read = each(blocks, "content", _user_block)
    results = [item for item in read if isinstance(item, Message)]
    parts = tuple(item for item in read if not isinstance(item, Message))
    if parts:
        results.append(Message("user", parts))
    return results


def _user_block(item: Any) -> Message | ContentPart:
    """A user turn's block: a tool result (a ``tool`` message) or a part of the user's own."""
    block, kind = _typed(item)
    if kind == "tool_result":
        return _tool_result(block)
    if kind == "text":
        return _text(block)
    if kind == "image":
        return _image(block)
    if kind == "document":
        return _document(block)
    raise _unsupported(kind, _USER_BLOCKS, "user")


_Read = TextPart | ToolCall | tuple[str, str | None] | None


def _assistant_block(item: Any) -> _Read:
    """An assistant turn's block: text, a tool call, a thought with its signature; ``None``
    when the core loses some of it (``citations``, of which ``null`` is what the SDKs write
    back for none; ``cache_control`` on a tool use or a thought) or all of it (a server's
    block, see the module's docstring)."""
    block, kind = _typed(item)
    # Membership first: these fields are rare, and a plain block costs one test.
    if kind == "text":
        return _text(block) if "citations" not in block or not block["citations"] else None
    if kind == "tool_use":
        return _tool_use(block) if "cache_control" not in block else None
    if kind == "thinking" and "cache_control" not in block:
        thought = get_str(block, "thinking", "thinking", required=True) or ""
        return thought, get_str(block, "signature", "signature")
    if kind == "thinking":
        return None
    _server_block(kind)
    return None


def _assistant_turn(blocks: list[Any], read: Callable[[Any], _Read] = _assistant_block) -> Message:
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    signature: str | None = None
    whole = False  # the core loses some of a block: the turn is kept as written too
    for item in each(blocks, "content", read):
        if isinstance(item, ToolCall):
            calls.append(item)
        elif isinstance(item, tuple):
            thoughts.append(item[0])
            signature = item[1] or signature
        elif item is not None:
            parts.append(item)
        else:
            whole = True
    if whole and read is _assistant_block:
        # Rare: read again for what the core keeps of each block, and keep the turn whole.
        message = _assistant_turn(blocks, _kept_block)
        message.native = Native(DIALECT, {"content": blocks}, text=message.text())
        return message
    return Message(
        "assistant",
        tuple(parts),
        tool_calls=tuple(calls),
        reasoning="".join(thoughts) if thoughts else None,
        reasoning_signature=signature,
    )


def _kept_block(item: Any) -> _Read:
    """What the core keeps of an assistant turn's block (``None`` for a server's block)."""
    block, kind = _typed(item)
    if kind == "text":
        return _text(block)
    if kind == "tool_use":
        return _tool_use(block)
    if kind == "thinking":
        return _thought(block)
    _server_block(kind)
    return None


def _thought(block: dict[str, Any]) -> tuple[str, str | None]:
    thought = get_str(block, "thinking", "thinking", required=True) or ""
    return thought, get_str(block, "signature", "signature")


def _server_block(kind: str) -> None:
    """Nothing the core models (a server's block), or an error naming the accepted types."""
    if kind in _SERVER_BLOCKS or kind.endswith(_SERVER_RESULT_SUFFIX):
        return
    raise _unsupported(kind, _ASSISTANT_BLOCKS, "assistant")


def _typed(item: Any) -> tuple[dict[str, Any], str]:
    """A block and its ``type``, with paths relative to the block."""
    block = require_dict(item, "")
    return block, get_str(block, "type", "type", required=True) or ""


def _text(block: dict[str, Any]) -> TextPart:
    text = get_str(block, "text", "text", required=True) or ""
    return TextPart(text, cache_mark(block))


def _image(block: dict[str, Any]) -> ImagePart:
    source = get_dict(block, "source", "source", required=True) or {}
    kind = get_str(source, "type", "source.type", required=True)
    cache = cache_mark(block)
    if kind == "url":
        url = get_str(source, "url", "source.url", required=True) or ""
        return ImagePart(url, cache=cache)
    if kind != "base64":
        raise bad("source.type", f"must be 'base64' or 'url'; got {kind!r}")
    media_type = get_str(source, "media_type", "source.media_type", required=True)
    if media_type not in IMAGE_MEDIA_TYPES:
        raise bad(
            "source.media_type",
            f"must be one of {', '.join(IMAGE_MEDIA_TYPES)}; got {media_type!r}",
        )
    data = get_str(source, "data", "source.data", required=True)
    if not data:
        raise bad("source.data", "must not be empty")
    return ImagePart(f"data:{media_type};base64,{data}", cache=cache)


def _document(block: dict[str, Any]) -> DocumentPart:
    """A PDF (base64 or URL), plain text, text content blocks or a Files API id. The block
    travels whole too (``native``) for upstreams of this API."""
    source = get_dict(block, "source", "source", required=True) or {}
    kind = get_str(source, "type", "source.type", required=True)
    if kind not in _DOCUMENT_SOURCES:
        raise bad("source.type", f"must be one of {', '.join(_DOCUMENT_SOURCES)}; got {kind!r}")
    title = get_str(block, "title", "title")
    cache = cache_mark(block)
    if kind in ("base64", "text"):
        expected = "application/pdf" if kind == "base64" else "text/plain"
        media_type = get_str(source, "media_type", "source.media_type", required=True)
        if media_type != expected:
            raise bad("source.media_type", f"must be {expected!r} for a {kind} source")
        data = get_str(source, "data", "source.data", required=True) or ""
        text = data if kind == "text" else None
        pdf = data if kind == "base64" else None
        return DocumentPart(expected, pdf, None, text, title, cache, block)
    if kind == "url":
        url = get_str(source, "url", "source.url", required=True)
        return DocumentPart("application/pdf", None, url, None, title, cache, block)
    if kind == "content":
        text = _content_source_text(source)
        return DocumentPart("text/plain", None, None, text, title, cache, block)
    get_str(source, "file_id", "source.file_id", required=True)
    return DocumentPart("application/pdf", None, None, None, title, cache, block)


def _content_source_text(source: dict[str, Any]) -> str:
    content = source.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad("source.content", "must be a string or an array of text blocks")
    return "\n\n".join(part.text for part in each(content, "source.content", _document_text))


def _document_text(raw: Any) -> TextPart:
    inner = require_dict(raw, "")
    if inner.get("type") != "text":
        raise bad("type", "must be 'text' (images in documents are not supported here)")
    return _text(inner)


def _tool_use(block: dict[str, Any]) -> ToolCall:
    call_id = get_str(block, "id", "id", required=True) or ""
    name = get_str(block, "name", "name", required=True) or ""
    value = block.get("input")
    if not isinstance(value, dict):
        raise bad("input", "must be an object")
    raw = value.get(RAW_INPUT_KEY)
    if len(value) == 1 and isinstance(raw, str):
        return ToolCall(call_id, name, raw)
    return ToolCall(call_id, name, orjson.dumps(value).decode())


def _tool_result(block: dict[str, Any]) -> Message:
    call_id = get_str(block, "tool_use_id", "tool_use_id", required=True) or ""
    content = block.get("content")
    parts: list[ContentPart] = []
    if isinstance(content, str):
        parts.append(TextPart(content))
    elif isinstance(content, list):
        parts = each(content, "content", _result_block)
    elif content is not None:
        raise bad("content", "must be a string or an array of content blocks")
    if get_bool(block, "is_error", "is_error"):
        parts = _mark_error(parts)
    return Message("tool", tuple(parts), tool_call_id=call_id, cache=cache_mark(block))


def _result_block(raw: Any) -> ContentPart:
    inner = require_dict(raw, "")
    kind = get_str(inner, "type", "type", required=True)
    if kind == "text":
        return _text(inner)
    if kind == "image":
        return _image(inner)
    raise _unsupported(kind, _RESULT_BLOCKS, "tool_result")


def _mark_error(parts: list[ContentPart]) -> list[ContentPart]:
    for i, part in enumerate(parts):
        if isinstance(part, TextPart):
            marked = TextPart(ERROR_PREFIX + part.text, part.cache)
            return [*parts[:i], marked, *parts[i + 1 :]]
    return [TextPart(ERROR_PREFIX.rstrip()), *parts]


def _unsupported(kind: str | None, accepted: str, where: str) -> InvalidRequest:
    return bad(
        "type",
        f"content block type {kind!r} is not supported in {where} content; accepted: {accepted}",
    )
