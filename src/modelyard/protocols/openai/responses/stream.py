"""Core stream events as the Responses API's event sequence, each with a ``sequence_number``.

``response.created`` and ``response.in_progress`` open the stream. Output items open as the
kind of content changes (reasoning, the message, each tool call by its core ``call_index``):
``response.output_item.added``, the item's deltas, then its ``.done`` events and
``response.output_item.done`` before the next item opens. The stream ends with
``response.completed`` or ``response.incomplete`` (the final ``Response``, usage included;
``incomplete_details.reason`` is ``content_filter`` when an output guard blocked the rest), or,
when the upstream fails after the first byte, ``response.failed`` carrying the error: never a
silent end. Should an upstream interleave the argument pieces of several calls, a late piece
still goes to its call's item (its id) rather than being dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from modelyard.core.chat import FinishReason, ToolCall, Usage
from modelyard.core.errors import ContentBlocked, ModelyardError
from modelyard.core.events import (
    Finished,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.protocols.openai.responses.encode import (
    Envelope,
    call_item,
    error_json,
    filtered_json,
    message_item,
    reasoning_item,
    refusal_part,
    response_json,
    status_of,
    text_part,
)
from modelyard.protocols.openai.responses.request import JSON, fresh_item_id


@dataclass(slots=True)
class _Open:
    kind: str  # "reasoning", "message", "refusal" (a message refusing) or "call"
    index: int  # in the output
    item: JSON
    pieces: list[str] = field(default_factory=list)


class ResponseStream:
    """One response's frames: ``start``, ``encode`` per event, then ``close`` or ``failed``.
    ``output``, ``usage`` and ``status`` describe the response once it has ended."""

    __slots__ = (
        "_calls", "_env", "_open", "_reason", "_seq", "final", "output", "status", "usage"
    )  # fmt: skip

    def __init__(self, env: Envelope) -> None:
        self._env = env
        self._seq = 0
        self._open: _Open | None = None
        self._calls: dict[int, _Open] = {}
        self._reason: FinishReason | None = None
        self.output: list[JSON] = []
        self.usage: Usage | None = None
        self.status = "in_progress"
        self.final: JSON = {}  # the last ``Response`` object sent

    def _frame(self, kind: str, payload: JSON) -> bytes:
        payload["type"] = kind
        payload["sequence_number"] = self._seq
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def start(self) -> bytes:
        body = response_json(self._env, "in_progress", [], None)
        return self._frame("response.created", {"response": body}) + self._frame(
            "response.in_progress", {"response": body}
        )

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, UsageReport):
            self.usage = event.usage
            return b""
        if event.index != 0:
            return b""  # this API has no ``n``: only the first choice is encoded
        if isinstance(event, TextDelta):
            return self._text(event.text) if event.text else b""
        if isinstance(event, ToolCallDelta):
            return self._call(event)
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event)
        if isinstance(event, RefusalDelta):
            return self._refusal(event.text) if event.text else b""
        if isinstance(event, Finished):
            self._reason = event.reason
        return b""

    def close(self) -> bytes:
        """The frames that close the open item, once the core stream has ended; ``final`` is
        then the finished ``Response`` (``terminal`` sends it)."""
        out = self._close()
        self.status, incomplete = status_of(self._reason)
        self.final = response_json(
            self._env, self.status, self.output, self.usage, incomplete=incomplete
        )
        return out

    def failed(self, err: ModelyardError) -> bytes:
        """As ``close``, for a stream that failed after the first byte (or whose end could not
        be recorded): ``final`` is a failed ``Response`` carrying the error."""
        out = self._close()
        self.status = "failed"
        error = error_json(err)
        self.final = response_json(self._env, "failed", self.output, self.usage, error=error)
        return out

    def blocked(self, blocked: ContentBlocked) -> bytes:
        """As ``close``, for a stream an output guard blocked: the open item ends with what was
        released before the block (nothing of the blocked text was), and ``final`` is an
        ``incomplete`` ``Response`` whose ``incomplete_details`` say ``content_filter``."""
        out = self._close(status="incomplete")
        self.status = "incomplete"
        self.final = response_json(
            self._env, "incomplete", self.output, self.usage, incomplete=filtered_json(blocked)
        )
        return out

    def cancelled(self) -> bytes:
        """As ``close``, for a background response cancelled mid-way: the open item ends
        ``incomplete`` with what was produced, and ``final`` is a ``cancelled`` ``Response``
        (the spec has no event for it: ``terminal`` is not sent)."""
        out = self._close(status="incomplete")
        self.status = "cancelled"
        self.final = response_json(self._env, "cancelled", self.output, self.usage)
        return out

    def terminal(self) -> bytes:
        """The last event: ``response.completed``, ``.incomplete`` or ``.failed``."""
        return self._frame(f"response.{self.status}", {"response": self.final})

    def _begin(self, kind: str, item: JSON) -> tuple[bytes, _Open]:
        out = self._close()
        opened = _Open(kind, len(self.output), item)
        self.output.append(item)
        self._open = opened
        added = {"output_index": opened.index, "item": dict(item)}
        return out + self._frame("response.output_item.added", added), opened

    def _text(self, text: str) -> bytes:
        out = b""
        opened = self._open
        if opened is None or opened.kind != "message":
            out, opened = self._begin("message", message_item("", status="in_progress"))
            part = {**self._at(opened), "content_index": 0, "part": text_part("")}
            out += self._frame("response.content_part.added", part)
        opened.pieces.append(text)
        delta = {**self._at(opened), "content_index": 0, "delta": text, "logprobs": []}
        return out + self._frame("response.output_text.delta", delta)

    def _refusal(self, text: str) -> bytes:
        """A piece of a refusal: a message item whose part is a ``refusal``."""
        out = b""
        opened = self._open
        if opened is None or opened.kind != "refusal":
            out, opened = self._begin("refusal", message_item("", status="in_progress"))
            part = {**self._at(opened), "content_index": 0, "part": refusal_part("")}
            out += self._frame("response.content_part.added", part)
        opened.pieces.append(text)
        delta = {**self._at(opened), "content_index": 0, "delta": text}
        return out + self._frame("response.refusal.delta", delta)

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        out = b""
        opened = self._open
        if opened is None or opened.kind != "reasoning":
            out, opened = self._begin("reasoning", reasoning_item("", None))
            out += self._frame(
                "response.reasoning_summary_part.added",
                {**self._at(opened), "summary_index": 0, "part": _summary("")},
            )
        if event.text:
            opened.pieces.append(event.text)
            delta = {**self._at(opened), "summary_index": 0, "delta": event.text}
            out += self._frame("response.reasoning_summary_text.delta", delta)
        if event.signature:
            opened.item["encrypted_content"] = event.signature
            out += self._close()
        return out

    def _call(self, event: ToolCallDelta) -> bytes:
        out = b""
        opened = self._calls.get(event.call_index)
        if opened is None:
            call = ToolCall(event.id or fresh_item_id("call"), event.name or "", "")
            item = call_item(call, self._env.request)
            item["status"] = "in_progress"
            out, opened = self._begin("call", item)
            self._calls[event.call_index] = opened
        if event.arguments:
            opened.pieces.append(event.arguments)
            if opened is not self._open:  # a late piece of a call already closed
                opened.item["arguments"] = "".join(opened.pieces)
            delta = {**self._at(opened), "delta": event.arguments}
            out += self._frame("response.function_call_arguments.delta", delta)
        return out

    def _at(self, opened: _Open) -> JSON:
        return {"item_id": opened.item["id"], "output_index": opened.index}

    def _close(self, status: str = "completed") -> bytes:
        opened, self._open = self._open, None
        if opened is None:
            return b""
        text = "".join(opened.pieces)
        at = self._at(opened)
        item = opened.item
        if opened.kind == "message":
            item["content"], item["status"] = [text_part(text)], status
            out = self._frame(
                "response.output_text.done",
                {**at, "content_index": 0, "text": text, "logprobs": []},
            )
            part = {**at, "content_index": 0, "part": text_part(text)}
            out += self._frame("response.content_part.done", part)
        elif opened.kind == "refusal":
            item["content"], item["status"] = [refusal_part(text)], status
            done = {**at, "content_index": 0, "refusal": text}
            out = self._frame("response.refusal.done", done)
            part = {**at, "content_index": 0, "part": refusal_part(text)}
            out += self._frame("response.content_part.done", part)
        elif opened.kind == "reasoning":
            item["summary"] = [_summary(text)] if text else []
            done = {**at, "summary_index": 0, "text": text}
            out = self._frame("response.reasoning_summary_text.done", done)
            part = {**at, "summary_index": 0, "part": _summary(text)}
            out += self._frame("response.reasoning_summary_part.done", part)
        else:
            item["arguments"], item["status"] = text, status
            done = {**at, "name": item["name"], "arguments": text}
            out = self._frame("response.function_call_arguments.done", done)
        done_item = {"output_index": opened.index, "item": dict(item)}
        return out + self._frame("response.output_item.done", done_item)


def _summary(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}
