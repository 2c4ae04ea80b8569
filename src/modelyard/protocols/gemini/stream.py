"""Stream core events as Gemini ``streamGenerateContent`` chunks: SSE, or one JSON array.

With ``alt=sse`` each chunk is a ``data:`` frame; without it the body is a JSON array whose
elements are the chunks, written as they come, as Google's endpoint does. Each chunk is a
``GenerateContentResponse`` holding what arrived: text and thought parts as they stream. Gemini
sends a function call whole, never in pieces, so tool calls are gathered and sent in the last
chunk, with each candidate's ``finishReason`` and the ``usageMetadata``. A refusal's pieces are
text parts, as in a whole answer (``encode``). An error after the
first byte is one more chunk holding the error object (the array is then closed).

The array's writes are ``[``, ``{...},\\r\\n`` per chunk, and the last chunk (or the error's)
``{...}]``: a separator ends a chunk rather than begins the next, so the error frame needs
nothing of the stream's state (``error_frame``) and the route's dialect is built once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from modelyard.core.chat import FinishReason, ToolCall, Usage
from modelyard.core.errors import ModelyardError
from modelyard.core.events import (
    Finished,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.protocols.gemini.encode import call_part, finish_reason, usage_json
from modelyard.protocols.gemini.errors import error_body


@dataclass(slots=True)
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamEncoder:
    """One response's chunks; ``sse`` picks the framing."""

    __slots__ = ("_calls", "_finished", "_sse", "_tail", "_usage")

    def __init__(self, model: str, response_id: str, *, sse: bool) -> None:
        self._sse = sse
        # Every chunk ends with the same two fields; serialised once.
        self._tail = orjson.dumps({"modelVersion": model, "responseId": response_id})[1:]
        self._calls: dict[tuple[int, int], _Call] = {}
        self._finished: dict[int, FinishReason] = {}
        self._usage: Usage | None = None

    def start(self) -> bytes:
        return b"" if self._sse else b"["

    def encode(self, event: StreamEvent) -> bytes | None:
        if isinstance(event, TextDelta):
            return self._parts(event.index, {"text": event.text}) if event.text else None
        if isinstance(event, ReasoningDelta):
            part = {"text": event.text, "thought": True}
            return self._parts(event.index, part) if event.text else None
        if isinstance(event, ToolCallDelta):
            call = self._calls.setdefault((event.index, event.call_index), _Call())
            call.id = event.id or call.id
            call.name = event.name or call.name
            call.arguments.append(event.arguments)
        elif isinstance(event, RefusalDelta):  # no refusal in Gemini: the words as text parts
            return self._parts(event.index, {"text": event.text}) if event.text else None
        elif isinstance(event, Finished):
            self._finished[event.index] = event.reason
        elif isinstance(event, UsageReport):
            self._usage = event.usage
        return None

    def close(self) -> bytes:
        indexes = sorted({*self._finished, *(i for i, _ in self._calls)} or {0})
        candidates = []
        for index in indexes:
            calls = [
                call_part(ToolCall(c.id, c.name, "".join(c.arguments)))
                for (i, _), c in sorted(self._calls.items())
                if i == index
            ]
            candidate: dict[str, object] = {
                "finishReason": finish_reason(self._finished.get(index)),
                "index": index,
            }
            if calls:
                candidate["content"] = {"role": "model", "parts": calls}
            candidates.append(candidate)
        body = {"candidates": candidates, "usageMetadata": usage_json(self._usage)}
        return _last(orjson.dumps(body)[:-1] + b"," + self._tail, sse=self._sse)

    def error(self, err: ModelyardError, _request_id: str = "") -> bytes:
        return error_frame(err, sse=self._sse)

    def _parts(self, index: int, part: dict[str, object]) -> bytes:
        content = {"role": "model", "parts": [part]}
        body = orjson.dumps({"candidates": [{"content": content, "index": index}]})
        return self._frame(body[:-1] + b"," + self._tail)

    def _frame(self, chunk: bytes) -> bytes:
        if self._sse:
            return b"data: " + chunk + b"\r\n\r\n"
        return chunk + b",\r\n"


def error_frame(err: ModelyardError, *, sse: bool) -> bytes:
    """The last frame of a stream that failed after its first byte: the error object as one
    more chunk (the array closed)."""
    return _last(error_body(err), sse=sse)


def _last(chunk: bytes, *, sse: bool) -> bytes:
    return b"data: " + chunk + b"\r\n\r\n" if sse else chunk + b"]"
