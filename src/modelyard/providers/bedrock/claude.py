"""Claude's own answer parts through Converse, in the Messages API's shapes (``core.chat.Native``).

Converse carries parts of Claude's answers the core does not model, under its own names. Where
the facts map one to one, they are kept for a Messages API client in that API's shapes (a
``Native`` of its dialect, ``MESSAGES``): the model behind them is Claude, and the Messages API
is the dialect with names for them. Every other client's encoder ignores them.

* ``reasoningContent.redactedContent`` (thinking Claude's safety systems encrypted; a blob,
  base64 in Converse's JSON) is a ``redacted_thinking`` block whose ``data`` is that base64
  text as it came. An answer holding one keeps its whole ``content`` in the Messages API's
  blocks (``thinking``, ``redacted_thinking``, ``text``, ``tool_use``), every block in its
  place. Sent back in a client's history (``Message.native``), such a block goes to Converse as
  ``redactedContent`` again, with the turn's thinking blocks in their order and signatures, as
  Claude requires of the last assistant turn of a thinking and tools loop.
* ``citationsContent`` (a cited text) is its text for every client; for a Messages client a
  ``text`` block with ``citations``: a ``documentChar``, ``documentPage`` or ``documentChunk``
  location is a ``char_location``, ``page_location`` or ``content_block_location`` (the indices
  as Converse gives them: Bedrock passes Claude's own through). A ``web`` or search-result
  location has no Messages counterpart that Converse gives the facts for (a web search result
  location needs the result's ``encrypted_index``): that citation is left out, its text stays.
* Stop reasons: ``stop_sequence`` and ``model_context_window_exceeded`` are the Messages API's
  own values, which the core folds (``stop``, ``length``); an answer stopped so keeps them
  (``stop_sequence`` names the sequence from ``additionalModelResponseFields``, which the
  codec asks for whenever stop sequences are set; null should the model not say).
  ``guardrail_intervened`` (a Bedrock guardrail) and ``content_filtered`` (the model's own
  filter) are the core's ``content_filter``, which a Messages client reads as ``refusal``,
  that API's one stop reason for a turn withheld for its content.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from modelyard.core.chat import Message, Native
from modelyard.core.errors import InvalidRequest

# The Messages API's dialect name: the origin its encoder writes a ``Native`` of.
MESSAGES: Final = "anthropic"
# Stop reasons the core folds that the Messages API says in full.
OWN_STOPS: Final = frozenset({"stop_sequence", "model_context_window_exceeded"})
_LOCATIONS: Final[Mapping[str, tuple[str, str, str]]] = {
    "documentChar": ("char_location", "start_char_index", "end_char_index"),
    "documentPage": ("page_location", "start_page_number", "end_page_number"),
    "documentChunk": ("content_block_location", "start_block_index", "end_block_index"),
}


def answer_native(
    blocks: Sequence[Mapping[str, Any]], json_tool: str | None, message: Message
) -> Native:
    """The answer's whole ``content`` in the Messages API's blocks."""
    content = [b for b in (_block(block, json_tool) for block in blocks) if b is not None]
    return Native(MESSAGES, {"content": content}, text=message.text())


def with_stop(native: Native | None, reason: str, data: Mapping[str, Any], text: str) -> Native:
    """``native`` (or a new one) with the Messages API's stop fields for ``reason``."""
    fields = {"stop_reason": reason, "stop_sequence": _matched(data, reason)}
    if native is None:
        return Native(MESSAGES, fields, text=text)
    return Native(MESSAGES, {**native.fields, **fields}, text=native.text)


def stop_delta(reason: str, event: Mapping[str, Any]) -> Native:
    """The stop fields a Messages API stream's ``message_delta`` carries for ``reason``, from
    ConverseStream's ``messageStop`` ``event``."""
    fields = {"stop_reason": reason, "stop_sequence": _matched(event, reason)}
    return Native(MESSAGES, {"message_delta": fields})


def redacted_block(data: object) -> Native:
    """A streamed ``redacted_thinking`` block, whole (Converse sends its data in one delta)."""
    return Native(MESSAGES, {"content_block": {"type": "redacted_thinking", "data": data}})


def cited_text(block: Mapping[str, Any]) -> str:
    """The text of a ``citationsContent`` block."""
    parts = block["citationsContent"].get("content") or []
    return "".join(str(p.get("text") or "") for p in parts)


def history_reasoning(message: Message, param: str) -> list[dict[str, Any]] | None:
    """A client's assistant turn's thinking blocks as Converse's ``reasoningContent`` blocks,
    in their order, when the turn came whole from a Messages client and holds a
    ``redacted_thinking`` block; else None (the core's reasoning is sent)."""
    native = message.native
    if native is None or native.origin != MESSAGES:
        return None
    content = native.fields.get("content")
    if not isinstance(content, list) or not any(_redacted(b) for b in content):
        return None
    out: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        if _redacted(block):
            data = _redacted_data(block.get("data"), f"{param}[{j}].data")
            out.append({"reasoningContent": {"redactedContent": data}})
        elif isinstance(block, dict) and block.get("type") == "thinking" and block.get("signature"):
            text = {"text": str(block.get("thinking") or ""), "signature": block["signature"]}
            out.append({"reasoningContent": {"reasoningText": text}})
    return out


def _redacted(block: object) -> bool:
    return isinstance(block, dict) and block.get("type") == "redacted_thinking"


def _redacted_data(data: object, param: str) -> str:
    """The block's data, which Converse takes as base64 (what it sent it as)."""
    if isinstance(data, str) and data:
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest(
                f"{param}: a redacted_thinking block's data must be the base64 text the "
                "upstream sent",
                param=param,
            ) from exc
        return data
    raise InvalidRequest(f"{param}: a redacted_thinking block needs its data", param=param)


def _block(block: Mapping[str, Any], json_tool: str | None) -> dict[str, Any] | None:
    if "text" in block:
        return {"type": "text", "text": block["text"]}
    if "toolUse" in block:
        use = block["toolUse"]
        if use["name"] == json_tool:
            return {"type": "text", "text": orjson.dumps(use.get("input") or {}).decode()}
        return {
            "type": "tool_use",
            "id": use["toolUseId"],
            "name": use["name"],
            "input": use.get("input") or {},
        }
    if "reasoningContent" in block:
        reasoning = block["reasoningContent"]
        if "redactedContent" in reasoning:
            return {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
        said = reasoning.get("reasoningText") or {}
        return {
            "type": "thinking",
            "thinking": said.get("text") or "",
            "signature": said.get("signature") or "",
        }
    if "citationsContent" in block:
        cited = block["citationsContent"]
        citations = [c for c in map(_citation, cited.get("citations") or []) if c is not None]
        out: dict[str, Any] = {"type": "text", "text": cited_text(block)}
        if citations:
            out["citations"] = citations
        return out
    return None  # an image or another block a Messages answer has no place for


def _citation(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    location = raw.get("location") or {}
    for key, (kind, start, end) in _LOCATIONS.items():
        where = location.get(key)
        if isinstance(where, dict):
            source = raw.get("sourceContent") or []
            return {
                "type": kind,
                "cited_text": "".join(str(s.get("text") or "") for s in source),
                "document_index": where.get("documentIndex", 0),
                "document_title": raw.get("title"),
                start: where.get("start", 0),
                end: where.get("end", 0),
            }
    return None


def _matched(data: Mapping[str, Any], reason: str) -> object:
    if reason != "stop_sequence":
        return None
    fields = data.get("additionalModelResponseFields")
    return fields.get("stop_sequence") if isinstance(fields, dict) else None
