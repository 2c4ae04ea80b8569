"""Core messages → Converse's top-level ``system`` blocks and its ``messages`` turns.

Converse has no system role: system and developer messages, wherever they stand, are hoisted in
order into ``system``, one text block per part. A client's cache breakpoint (``CacheMark``)
becomes a ``cachePoint`` block after the block it marks (its ``ttl`` is not sent: the default
lifetime applies). Tool results become ``toolResult`` blocks in a user turn, consecutive turns
of one role are merged (parallel tool results share a turn, tool results first), and empty text
is left out because Converse rejects blank text blocks. Images must be inline (``data:`` URLs):
Converse takes bytes (base64 in JSON) or S3 locations, never web URLs, and the gateway does not
fetch. Reasoning goes back upstream only with its signature, since models reject unsigned
reasoning blocks. A Messages client's assistant turn holding ``redacted_thinking`` sends its
thinking blocks in their order, the redacted ones as ``redactedContent`` (``claude``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from modelyard.core.chat import ContentPart, DocumentPart, Message, TextPart
from modelyard.core.errors import InvalidRequest, UnsupportedCapability
from modelyard.providers.bedrock import claude
from modelyard.providers.documents import inline_pdf

Block = dict[str, Any]
Turn = dict[str, Any]

IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DATA_URL = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?P<params>(;[^,;]*)*?);base64,(?P<data>.*)", re.S
)
# Tool-use ids must match [a-zA-Z0-9_.:-]+ and be at most 64 characters; ids minted by other
# vendors may not, so they are rewritten the same way on the call and on its result.
_ID_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_.:-]")
_ID_MAX = 64
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9\-()\[\] ]")
_NAME_MAX = 200
# Within a turn these must lead: reasoning before an assistant's text, results before user text.
_LEADING = ("reasoningContent", "toolResult")


@dataclass(slots=True)
class Converted:
    system: list[Block]
    turns: list[Turn]
    # Names of the tools called in the history: Converse wants a toolConfig whenever the turns
    # hold toolUse or toolResult blocks, even when this request offers no tools.
    history_tools: list[str]
    has_tool_blocks: bool


def convert_messages(messages: Sequence[Message], model: str) -> Converted:
    """Raises ``InvalidRequest`` naming the field at fault."""
    out = Converted([], [], [], False)
    for i, message in enumerate(messages):
        if message.role in ("system", "developer"):
            out.system.extend(_system_blocks(message, i))
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message, i, model, out)
        if not blocks:
            continue
        if out.turns and out.turns[-1]["role"] == role:
            merged = [*out.turns[-1]["content"], *blocks]
            out.turns[-1]["content"] = sorted(merged, key=_leads_last)
        else:
            out.turns.append({"role": role, "content": sorted(blocks, key=_leads_last)})
    return out


def tool_use_id(raw: str) -> str:
    cleaned = _ID_BAD_CHARS.sub("_", raw) or "tooluse"
    if len(cleaned) <= _ID_MAX:
        return cleaned
    # Keep long ids distinct after shortening: a prefix plus a digest of the whole id.
    return cleaned[:40] + "_" + hashlib.sha256(raw.encode()).hexdigest()[:23]


def _leads_last(block: Block) -> bool:
    return not any(key in block for key in _LEADING)


def cache_point() -> Block:
    """The block that sets a cache breakpoint after the one before it."""
    return {"cachePoint": {"type": "default"}}


def _system_blocks(message: Message, i: int) -> list[Block]:
    if message.has_images():
        raise InvalidRequest(
            f"messages[{i}].content: system and developer messages cannot hold images",
            param=f"messages[{i}].content",
        )
    blocks: list[Block] = []
    for part in message.content:
        if isinstance(part, TextPart) and part.text:
            blocks.append({"text": part.text})
            if part.cache is not None:
                blocks.append(cache_point())
    return blocks


def _blocks(message: Message, i: int, model: str, out: Converted) -> list[Block]:
    if message.refusal is not None:  # no refusal in this dialect: what it said, as text
        message = message.refusal_as_text()
    if message.role == "tool":
        result = _tool_result(message, i, model, out)
        cached = message.cache is not None or any(p.cache for p in message.content)
        return [result, cache_point()] if cached else [result]
    blocks: list[Block] = []
    kept = (
        None
        if message.native is None
        else claude.history_reasoning(message, f"messages[{i}].content")
    )
    if kept is not None:
        blocks.extend(kept)
    elif message.role == "assistant" and message.reasoning and message.reasoning_signature:
        text = {"text": message.reasoning, "signature": message.reasoning_signature}
        blocks.append({"reasoningContent": {"reasoningText": text}})
    blocks.extend(_content(message.content, f"messages[{i}].content", model, cache=True))
    if message.role == "assistant":
        for j, call in enumerate(message.tool_calls):
            param = f"messages[{i}].tool_calls[{j}].function.arguments"
            use = {"toolUseId": tool_use_id(call.id), "name": call.name}
            use["input"] = _arguments(call.arguments, param)
            blocks.append({"toolUse": use})
            out.has_tool_blocks = True
            if call.name not in out.history_tools:
                out.history_tools.append(call.name)
    return blocks


def _tool_result(message: Message, i: int, model: str, out: Converted) -> Block:
    if not message.tool_call_id:
        raise InvalidRequest(
            f"messages[{i}].tool_call_id: a tool message needs the id of the call it answers",
            param=f"messages[{i}].tool_call_id",
        )
    out.has_tool_blocks = True
    content = _content(message.content, f"messages[{i}].content", model)
    # Converse has no "is error" signal in core terms, so ``status`` (which only some models
    # accept) is left out; an empty result still needs one content block.
    result = {"toolUseId": tool_use_id(message.tool_call_id), "content": content or [{"text": ""}]}
    return {"toolResult": result}


def _content(
    parts: Sequence[ContentPart], param: str, model: str, *, cache: bool = False
) -> list[Block]:
    """The parts' blocks; with ``cache``, a ``cachePoint`` after each marked one (a tool
    result's content cannot hold them: its breakpoint follows the result)."""
    blocks: list[Block] = []
    for j, part in enumerate(parts):
        if isinstance(part, TextPart):
            if not part.text:
                continue
            blocks.append({"text": part.text})
        elif isinstance(part, DocumentPart):
            blocks.append({"document": _document(part, j, f"{param}[{j}]", model)})
        else:
            blocks.append({"image": image_block(part.url, f"{param}[{j}].image_url", model)})
        if cache and part.cache is not None:
            blocks.append(cache_point())
    return blocks


def _document(part: DocumentPart, j: int, param: str, model: str) -> Block:
    """Converse's document block: a PDF or plain text, as bytes, under a name it accepts."""
    if part.text is not None:
        data = base64.b64encode(part.text.encode()).decode("ascii")
        kind = "txt"
    else:
        data, kind = inline_pdf(part, param, model), "pdf"
    return {"format": kind, "name": _document_name(part.title, j), "source": {"bytes": data}}


def _document_name(title: str | None, j: int) -> str:
    # Names may hold letters, digits, single spaces, hyphens, parentheses and square brackets.
    cleaned = " ".join(_NAME_BAD_CHARS.sub(" ", title or "").split())[:_NAME_MAX]
    return cleaned or f"document-{j + 1}"


def image_block(url: str, param: str, model: str) -> Block:
    if not url.startswith("data:"):
        raise UnsupportedCapability("image URLs (send base64 data: URLs)", model, param=param)
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise InvalidRequest(
            f"{param}: only base64 data URLs (data:image/png;base64,...) are accepted",
            param=param,
        )
    image_format = IMAGE_FORMATS.get(match["mime"].lower())
    if image_format is None:
        raise InvalidRequest(
            f"{param}: image type {match['mime']!r} is not accepted; send PNG, JPEG, GIF or WebP",
            param=param,
        )
    data = "".join(match["data"].split())
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{param}: the image data is not valid base64", param=param) from exc
    return {"format": image_format, "source": {"bytes": data}}


def _arguments(arguments: str, param: str) -> Any:
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"{param}: the arguments are not valid JSON", param=param) from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"{param}: the arguments must be a JSON object", param=param)
    return value
