"""Encode core stream events as the Messages API's SSE event sequence.

``message_start`` (an empty message) and a ``ping``, then per content block
``content_block_start``, ``content_block_delta``\\ s (``thinking_delta`` / ``signature_delta``,
``text_delta``, ``input_json_delta``) and ``content_block_stop``, then ``message_delta`` (stop
reason and usage) and ``message_stop``. Each frame is ``event: <type>\\ndata: <json>\\n\\n``.

Blocks open as the kind of content changes: reasoning, text and each tool call (a new core
``call_index``) get their own block, and the open block is closed before the next one starts; a
signature closes its thinking block. Usage arrives at the end of a core stream, so
``message_start`` reports the gateway's estimate of the input tokens (``input_estimate``, see
``count``) and ``message_delta`` carries the upstream's final counts, input included (the SDKs
let those overwrite the start's). Should an upstream interleave the argument
pieces of several calls, a late piece goes to its call's block by index even though that block
was closed: dropping it would corrupt the call, and the SDKs' accumulators address blocks by
index. Only the first choice is encoded: this API has no ``n``.

An Anthropic upstream's blocks the core does not model come as ``NativeDelta``\\ s (see
``providers.anthropic.stream``): a ``content_block`` opens a block as the upstream wrote it (a
text one is then the open text block), a ``delta`` goes to the open block, in place; a
``message_delta`` (the upstream's own stop fields, its ``container``) goes to the closing
``message_delta``, see ``encode.own_stop``; the container as it came.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from modelyard.core.chat import FinishReason, Usage
from modelyard.core.events import (
    Finished,
    NativeDelta,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.protocols.anthropic.content import DIALECT
from modelyard.protocols.anthropic.encode import own_stop, stop_reason, usage_json


def frame(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass(slots=True)
class _Block:
    kind: str  # "thinking", "text", "tool" or "native" (a block the core does not model)
    index: int


class StreamEncoder:
    """Turns one response's core events into SSE frames; call ``start``, ``encode``, ``finish``."""

    __slots__ = (
        "_calls",
        "_estimate",
        "_id",
        "_model",
        "_next",
        "_open",
        "_reason",
        "_refused",
        "_stop",
        "_usage",
    )

    def __init__(self, message_id: str, model: str, input_estimate: int = 0) -> None:
        self._id = message_id
        self._estimate = input_estimate
        self._model = model
        self._open: _Block | None = None
        self._next = 0
        self._calls: dict[int, int] = {}  # core call_index → block index
        self._reason: FinishReason | None = None
        self._usage: Usage | None = None
        self._refused = False  # a refusal came (``RefusalDelta``): the stop reason says so
        self._stop: dict[str, Any] | None = None  # the upstream's own stop fields

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._estimate, "output_tokens": 0},
        }
        return frame("message_start", {"type": "message_start", "message": message}) + frame(
            "ping", {"type": "ping"}
        )

    def encode(self, event: StreamEvent) -> bytes:
        """The frames for one event; empty when it only updates state."""
        if isinstance(event, UsageReport):
            self._usage = event.usage
            return b""
        if event.index != 0:
            return b""
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            head, index = self._ensure("text", {"type": "text", "text": ""})
            return head + _delta(index, {"type": "text_delta", "text": event.text})
        if isinstance(event, ToolCallDelta):
            return self._tool(event)
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event)
        if isinstance(event, Finished):
            self._reason = event.reason
        elif isinstance(event, RefusalDelta):
            return self._refusal(event)
        elif isinstance(event, NativeDelta):
            return self._native(event)
        return b""

    def _native(self, event: NativeDelta) -> bytes:
        """An upstream block the core does not model, or a piece of one, written in place."""
        native = event.native
        if native.origin != DIALECT:
            return b""
        block = native.fields.get("content_block")
        if block is not None:
            kind = "text" if block.get("type") == "text" else "native"
            content = {**block, "text": ""} if kind == "text" else block
            return self._close() + self._begin(_Block(kind, self._next), content)
        delta = native.fields.get("delta")
        if delta is None:
            self._stop = native.fields.get("message_delta", self._stop)
            return b""
        if self._open is None:
            return b""
        return _delta(self._open.index, delta)

    def _refusal(self, event: RefusalDelta) -> bytes:
        """A refusal's explanation, as text (this API has no field of its own for one)."""
        self._refused = True
        if not event.text:
            return b""
        head, index = self._ensure("text", {"type": "text", "text": ""})
        return head + _delta(index, {"type": "text_delta", "text": event.text})

    def close(self) -> bytes:
        """The closing frames, once the core stream has ended without an error."""
        reason = "refusal" if self._refused else stop_reason(self._reason, bool(self._calls))
        stop: dict[str, Any] = {"stop_reason": reason, "stop_sequence": None}
        if self._stop is not None:
            stop.update(own_stop(self._stop, reason))
            if "container" in self._stop:
                stop["container"] = self._stop["container"]
        delta = {"type": "message_delta", "delta": stop, "usage": usage_json(self._usage)}
        return (
            self._close()
            + frame("message_delta", delta)
            + frame("message_stop", {"type": "message_stop"})
        )

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        out = b""
        empty = {"type": "thinking", "thinking": "", "signature": ""}
        if event.text:
            head, index = self._ensure("thinking", empty)
            out += head + _delta(index, {"type": "thinking_delta", "thinking": event.text})
        if event.signature:
            head, index = self._ensure("thinking", empty)
            out += head + _delta(index, {"type": "signature_delta", "signature": event.signature})
            out += self._close()
        return out

    def _tool(self, event: ToolCallDelta) -> bytes:
        out = b""
        index = self._calls.get(event.call_index)
        if index is None:
            out += self._close()
            index = self._next
            self._calls[event.call_index] = index
            block = {
                "type": "tool_use",
                "id": event.id or "toolu_" + os.urandom(12).hex(),
                "name": event.name or "",
                "input": {},
            }
            out += self._begin(_Block("tool", index), block)
        if event.arguments:
            out += _delta(index, {"type": "input_json_delta", "partial_json": event.arguments})
        return out

    def _ensure(self, kind: str, block: dict[str, Any]) -> tuple[bytes, int]:
        """Frames that make a block of ``kind`` the open one, and that block's index."""
        if self._open is not None and self._open.kind == kind:
            return b"", self._open.index
        head = self._close()
        index = self._next
        return head + self._begin(_Block(kind, index), block), index

    def _begin(self, block: _Block, content: dict[str, Any]) -> bytes:
        self._open = block
        self._next = block.index + 1
        payload = {"type": "content_block_start", "index": block.index, "content_block": content}
        return frame("content_block_start", payload)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open.index, None
        return frame("content_block_stop", {"type": "content_block_stop", "index": index})


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return frame(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )
