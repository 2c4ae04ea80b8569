"""Core messages → the Messages API's top-level ``system`` and its ``messages`` turns.

System and developer messages before the first turn go to ``system``, one text block per part
with its cache breakpoint. Later ones (mid-conversation system messages) stay where they stand
as ``system`` turns when the request may send them (``mid_system``: the client named the beta);
otherwise they are hoisted, in order, into ``system`` (their position is lost; Claude reads them
as part of the preamble). Cache breakpoints (``CacheMark``) become ``cache_control`` on the
block they follow. An assistant turn a Messages client wrote with blocks the core does not model
(``redacted_thinking``, server-tool blocks, citations; ``Message.native``) is sent as written,
unless a stage rewrote its text. Tool results travel as ``tool_result`` blocks in a user turn, and
consecutive turns of the same role are merged into one, so parallel tool results share a
single user message.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

import orjson

from modelyard.core.chat import CacheMark, DocumentPart, ImagePart, Message, TextPart, ToolCall
from modelyard.core.errors import InvalidRequest

Block = dict[str, Any]
Turn = dict[str, Any]

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# Tool-use ids must match ^[a-zA-Z0-9_-]+$; ids minted by other vendors may not, so they are
# rewritten the same way on the call and on its result, which keeps the pair matched.
_ID_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
# The dialect whose turns (``Message.native``) this module sends as their client wrote them.
ORIGIN = "anthropic"
# Within one turn these blocks must come first: thinking before an assistant's text and tool
# use, tool results before a user's own text.
_LEADING_BLOCKS = frozenset({"thinking", "redacted_thinking", "tool_result"})


def convert_messages(
    messages: Sequence[Message], provider: str, *, mid_system: bool = False
) -> tuple[list[Block], list[Turn]]:
    """``(system blocks, turns)`` for ``messages``; raises ``InvalidRequest`` naming the field."""
    system: list[Block] = []
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        if message.role in ("system", "developer"):
            blocks = _system_blocks(message, i, provider)
            if mid_system and turns and blocks:
                turns.append({"role": "system", "content": blocks})
            else:
                system.extend(blocks)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message, i, provider)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            merged = [*turns[-1]["content"], *blocks]
            turns[-1]["content"] = sorted(merged, key=lambda b: b["type"] not in _LEADING_BLOCKS)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def cache_control(mark: CacheMark) -> dict[str, str]:
    out = {"type": "ephemeral"}
    if mark.ttl is not None:
        out["ttl"] = mark.ttl
    return out


def tool_use_id(raw: str) -> str:
    return _ID_BAD_CHARS.sub("_", raw) or "toolu_"


def _system_blocks(message: Message, i: int, provider: str) -> list[Block]:
    if message.has_images():
        raise InvalidRequest(
            f"messages[{i}]: provider {provider!r} accepts only text in {message.role} messages",
            param=f"messages[{i}].content",
        )
    return [
        _text_block(part) for part in message.content if isinstance(part, TextPart) and part.text
    ]


def _text_block(part: TextPart) -> Block:
    block: Block = {"type": "text", "text": part.text}
    if part.cache is not None:
        block["cache_control"] = cache_control(part.cache)
    return block


def _blocks(message: Message, i: int, provider: str) -> list[Block]:
    if message.native is not None and _as_written(message):
        # A Messages client's turn with blocks the core does not model: sent as written.
        return list(message.native.fields["content"])
    if message.refusal is not None:  # no refusal in this dialect: what it said, as text
        message = message.refusal_as_text()
    if message.role == "tool":
        return [_tool_result(message, i, provider)]
    blocks: list[Block] = []
    if message.role == "assistant" and message.reasoning_signature is not None:
        # Only a signed block can go back; unsigned reasoning (from another vendor) is dropped.
        blocks.append(
            {
                "type": "thinking",
                "thinking": message.reasoning or "",
                "signature": message.reasoning_signature,
            }
        )
    blocks.extend(_content_blocks(message, i, provider))
    for j, call in enumerate(message.tool_calls):
        blocks.append(_tool_use(call, f"messages[{i}].tool_calls[{j}].function.arguments"))
    return blocks


def _as_written(message: Message) -> bool:
    """Whether ``message.native`` holds the turn as this dialect wrote it, its text unchanged."""
    native = message.native
    return native is not None and native.origin == ORIGIN and native.text == message.text()


def _content_blocks(message: Message, i: int, provider: str) -> list[Block]:
    blocks: list[Block] = []
    for j, part in enumerate(message.content):
        if isinstance(part, TextPart):
            # The API rejects empty text blocks; an empty string carries nothing anyway.
            if part.text:
                blocks.append(_text_block(part))
        elif message.role == "assistant":
            raise InvalidRequest(
                f"messages[{i}].content[{j}]: provider {provider!r} accepts no images or "
                "documents in assistant messages",
                param=f"messages[{i}].content[{j}]",
            )
        elif isinstance(part, DocumentPart):
            blocks.append(document_block(part))
        else:
            block = image_block(part, f"messages[{i}].content[{j}]", provider)
            if part.cache is not None:
                block["cache_control"] = cache_control(part.cache)
            blocks.append(block)
    return blocks


def document_block(part: DocumentPart) -> Block:
    """A document block: as the client wrote it when it came as one (title, context, citations
    and cache marker included), else built from the part."""
    if part.native is not None and part.native.get("type") == "document":
        return dict(part.native)
    if part.text is not None:
        source: Block = {"type": "text", "media_type": "text/plain", "data": part.text}
    elif part.data is not None:
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    else:
        source = {"type": "url", "url": part.url}
    block: Block = {"type": "document", "source": source}
    if part.title:
        block["title"] = part.title
    if part.cache is not None:
        block["cache_control"] = cache_control(part.cache)
    return block


def image_block(part: ImagePart, param: str, provider: str) -> Block:
    """An image block; ``detail`` has no counterpart here and is not sent."""
    url = part.url
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if not url.startswith("data:"):
        raise InvalidRequest(
            f"{param}: provider {provider!r} takes images as http(s) or data: URLs", param=param
        )
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64":
        raise InvalidRequest(f"{param}: a data: URL image must be base64-encoded", param=param)
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequest(
            f"{param}: provider {provider!r} does not accept images of type {media_type!r}; "
            f"accepted: {', '.join(IMAGE_MEDIA_TYPES)}",
            param=param,
        )
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{param}: the image data is not valid base64", param=param) from exc
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _tool_use(call: ToolCall, param: str) -> Block:
    return {
        "type": "tool_use",
        "id": tool_use_id(call.id),
        "name": call.name,
        "input": _tool_input(call, param),
    }


def _tool_input(call: ToolCall, param: str) -> dict[str, Any]:
    if not call.arguments.strip():
        return {}  # OpenAI clients send "" for a call without arguments
    try:
        value = orjson.loads(call.arguments)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"{param}: the arguments of tool call {call.id!r} ({call.name}) are not valid JSON",
            param=param,
        ) from exc
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"{param}: the arguments of tool call {call.id!r} ({call.name}) must be a JSON object",
            param=param,
        )
    return value


def _tool_result(message: Message, i: int, provider: str) -> Block:
    if message.tool_call_id is None:
        raise InvalidRequest(
            f"messages[{i}].tool_call_id: a tool message needs the id of the call it answers",
            param=f"messages[{i}].tool_call_id",
        )
    block: Block = {"type": "tool_result", "tool_use_id": tool_use_id(message.tool_call_id)}
    if message.has_images() or any(p.cache is not None for p in message.content):
        block["content"] = _content_blocks(message, i, provider)
    else:
        text = message.text()
        if text:
            block["content"] = text
    if message.cache is not None:
        block["cache_control"] = cache_control(message.cache)
    return block
