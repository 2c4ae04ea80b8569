"""Render an ``Answer`` as the Messages API's SSE event sequence.

Every event has an ``event:`` line naming its type and a ``data:`` line whose ``type`` repeats
it, as the real API sends them:

* ``message_start`` with the message shell (empty ``content``, ``stop_reason: null``) and usage
  holding the input counts and ``output_tokens: 1``;
* per content block ``content_block_start``, its deltas, ``content_block_stop``; a ``ping``
  follows the first block's start. Text streams as word-sized ``text_delta``\\ s; thinking as
  ``thinking_delta``\\ s and then one ``signature_delta``; tool use starts with ``input: {}``,
  then an empty ``input_json_delta`` and the input JSON in several ``partial_json`` pieces (a
  ``server_tool_use`` too); ``redacted_thinking`` and a server tool's result come whole in their
  ``content_block_start``, with no delta; a text block with citations starts without them and
  gets each in a ``citations_delta`` before its text;
* ``message_delta`` with ``stop_reason``, ``stop_sequence`` (and the answer's ``container``,
  when it ran in one) and the cumulative usage;
* ``message_stop``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .anthropic_messages import Answer, Block
from .anthropic_wire import error_body, signature_for
from .openai_wire import split_words

# Real partial_json pieces break between JSON punctuation and identifiers.
_FRAGMENT = re.compile(r"[A-Za-z0-9_]+|[^A-Za-z0-9_]+")


def sse_event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _event(kind: str, **fields: Any) -> bytes:
    return sse_event(kind, {"type": kind, **fields})


def stream_events(answer: Answer) -> list[bytes]:
    """Every event of the stream, ``message_stop`` included, in the order they are sent."""
    start_usage = {**answer.usage, "output_tokens": 1}
    shell: dict[str, Any] = {
        "id": answer.id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [_event("message_start", message=shell)]
    for index, block in enumerate(answer.blocks):
        events.append(_event("content_block_start", index=index, content_block=_shell(block)))
        if index == 0:
            events.append(_event("ping"))
        events.extend(_event("content_block_delta", index=index, delta=d) for d in _deltas(block))
        events.append(_event("content_block_stop", index=index))
    final_usage = {
        key: answer.usage[key]
        for key in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    }
    delta: dict[str, Any] = {
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
    }
    if answer.container is not None:
        delta["container"] = answer.container
    events.append(_event("message_delta", delta=delta, usage=final_usage))
    events.append(_event("message_stop"))
    return events


def error_event(error_type: str, message: str, request_id: str) -> bytes:
    """An in-stream ``error`` event, the way the API reports a failure after the 200."""
    return sse_event("error", error_body(error_type, message, request_id))


def _shell(block: Block) -> dict[str, Any]:
    if block.raw is not None or block.type == "redacted_thinking":
        return block.json()
    if block.type == "server_tool_use":
        return {"type": "server_tool_use", "id": block.id, "name": block.name, "input": {}}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
    return {"type": "text", "text": ""}


def _deltas(block: Block) -> list[dict[str, Any]]:
    if block.type == "thinking":
        pieces: list[dict[str, Any]] = [
            {"type": "thinking_delta", "thinking": piece} for piece in split_words(block.text)
        ]
        pieces.append({"type": "signature_delta", "signature": signature_for(block.text)})
        return pieces
    if block.raw is not None or block.type == "redacted_thinking":
        return []
    if block.type in ("tool_use", "server_tool_use"):
        arguments = orjson.dumps(block.input).decode()
        return [{"type": "input_json_delta", "partial_json": ""}] + [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in _FRAGMENT.findall(arguments)
        ]
    cited = [{"type": "citations_delta", "citation": c} for c in block.citations]
    return cited + [{"type": "text_delta", "text": piece} for piece in split_words(block.text)]
