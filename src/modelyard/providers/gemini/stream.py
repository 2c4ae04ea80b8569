"""Turn ``streamGenerateContent?alt=sse`` chunks into core stream events.

Each SSE ``data:`` is a whole ``GenerateContentResponse`` holding only the new parts. Text and
thought parts become deltas at once; a function call arrives whole in one part and becomes one
``ToolCallDelta`` with its id, name and arguments. ``usageMetadata`` is repeated (growing) on
chunks, so only the latest is kept. Gemini ends a stream by ending the body, with no sentinel:
at that point one ``UsageReport`` and the ``Finished`` events go out; a body that ends while a
candidate has no finish reason was cut short and raises ``UpstreamConnectionError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelyard.core.chat import FinishReason, ToolCall, Usage
from modelyard.core.errors import UpstreamConnectionError, UpstreamError
from modelyard.core.events import (
    Finished,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.providers.gemini.response import finish_reason, parse_usage, pieces, prompt_blocked


class StreamState:
    """What a stream has shown so far; ``feed`` each chunk, then ``close`` at the body's end."""

    def __init__(self, label: str, *, single_call: bool = False) -> None:
        self._label = label
        self._single_call = single_call
        self._usage: Usage | None = None
        self._seen: set[int] = set()
        self._calls: dict[int, int] = {}
        self._finished: dict[int, FinishReason] = {}

    def feed(self, data: Mapping[str, Any]) -> list[StreamEvent]:
        try:
            return self._feed(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(f"{self._label}: the upstream sent a malformed chunk") from exc

    def _feed(self, data: Mapping[str, Any]) -> list[StreamEvent]:
        usage = parse_usage(data.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        candidates = data.get("candidates") or []
        events: list[StreamEvent] = []
        for position, candidate in enumerate(candidates):
            events.extend(self._candidate(int(candidate.get("index", position)), candidate))
        if not candidates and prompt_blocked(data):
            self._seen.add(0)
            self._finished[0] = "content_filter"
        return events

    def _candidate(self, index: int, candidate: Mapping[str, Any]) -> list[StreamEvent]:
        self._seen.add(index)
        events: list[StreamEvent] = []
        for piece in pieces(candidate):
            if isinstance(piece, ToolCall):
                event = self._call(index, piece)
                if event is not None:
                    events.append(event)
            elif piece[0] == "thought":
                events.append(ReasoningDelta(piece[1], index))
            else:
                events.append(TextDelta(piece[1], index))
        calls = self._calls.get(index, 0)
        reason = finish_reason(candidate.get("finishReason"), calls > 0, self._label)
        if reason is not None:
            self._finished[index] = reason
        return events

    def _call(self, index: int, call: ToolCall) -> ToolCallDelta | None:
        made = self._calls.get(index, 0)
        if self._single_call and made:
            return None
        self._calls[index] = made + 1
        return ToolCallDelta(made, call.arguments, call.id, call.name, index)

    def close(self) -> list[StreamEvent]:
        """The closing events; raises if the body ended before every candidate finished."""
        if not self._finished or self._seen - self._finished.keys():
            raise UpstreamConnectionError(
                f"{self._label}: the stream ended before the upstream gave a finish reason"
            )
        events: list[StreamEvent] = [UsageReport(self._usage)] if self._usage else []
        events.extend(Finished(reason, index) for index, reason in sorted(self._finished.items()))
        return events
