"""ConverseStream event frames → core stream events.

The stream is ``messageStart``, then per content block an optional ``contentBlockStart`` (tool
use carries its id and name there), ``contentBlockDelta``s (``text``, ``toolUse.input`` as pieces
of JSON text, ``reasoningContent.text``/``signature``) and ``contentBlockStop``, then
``messageStop`` with the stop reason and ``metadata`` with the usage. Block indices count every
block; core tool-call indices count tool calls only, so they are renumbered from 0. The usage
and the finish reason are emitted together once both have arrived (usage first), which ends the
stream; a stream that closes before that was cut short.

Claude's parts the core does not model travel as ``NativeDelta``\\ s in the Messages API's
shapes (see ``claude``): a ``redactedContent`` reasoning delta is a whole ``redacted_thinking``
block, and a stop reason the core folds comes as the ``message_delta``'s stop fields before
the ``Finished``. A cited text streams as ``text`` deltas; its ``citation`` deltas are not
relayed (a Messages stream's ``citations_delta`` belongs to a text block the core cannot place
in a Converse stream's order), so a streamed answer's citations reach no client.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard.core.chat import FinishReason
from modelyard.core.errors import UpstreamConnectionError, UpstreamError
from modelyard.core.events import (
    Finished,
    NativeDelta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.providers.bedrock import claude, errors
from modelyard.providers.bedrock.eventstream import Frame
from modelyard.providers.bedrock.response import finish_reason, parse_usage

_JSON_ANSWER = -1  # marks the block of the synthetic JSON-answer tool: its input is text


class StreamTranslator:
    __slots__ = (
        "_blocks",
        "_calls",
        "_json_tool",
        "_label",
        "_stop",
        "_stop_reason",
        "_usage",
        "done",
    )

    def __init__(self, json_tool: str | None, label: str) -> None:
        self._json_tool = json_tool
        self._label = label
        self._blocks: dict[int, int] = {}  # content block index → core tool-call index
        self._calls = 0
        self._stop_reason: object = None
        self._stop: dict[str, Any] = {}  # the messageStop event, for a stop the core folds
        self._usage: UsageReport | None = None
        self.done = False

    def event(self, frame: Frame) -> list[StreamEvent]:
        return self.frame(frame)

    def end(self) -> list[StreamEvent]:
        raise UpstreamConnectionError(
            f"{self._label}: the stream ended before messageStop and metadata"
        )

    def frame(self, frame: Frame) -> list[StreamEvent]:
        """Events for one frame; raises the classified error for an exception frame."""
        if frame.message_type != "event":
            raise errors.classify_frame(frame, self._label)
        try:
            payload = orjson.loads(frame.payload) if frame.payload else {}
            return self._event(frame.event_type, payload)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(
                f"{self._label}: the upstream sent a malformed {frame.event_type} event"
            ) from exc

    def _event(self, kind: str | None, data: dict[str, Any]) -> list[StreamEvent]:
        if kind == "contentBlockDelta":
            return self._delta(int(data["contentBlockIndex"]), data["delta"])
        if kind == "contentBlockStart":
            return self._start(int(data["contentBlockIndex"]), data["start"])
        if kind == "messageStop":
            self._stop_reason = data.get("stopReason")
            self._stop = data
            return self._maybe_finish()
        if kind == "metadata":
            usage = parse_usage(data.get("usage"))
            if usage is None:
                raise ValueError("metadata without usage")
            self._usage = UsageReport(usage)
            return self._maybe_finish()
        return []  # messageStart, contentBlockStop and events added to the API later

    def _start(self, block: int, start: dict[str, Any]) -> list[StreamEvent]:
        use = start.get("toolUse")
        if not isinstance(use, dict):
            return []
        if use["name"] == self._json_tool:
            self._blocks[block] = _JSON_ANSWER
            return []
        call = self._calls
        self._calls += 1
        self._blocks[block] = call
        return [ToolCallDelta(call_index=call, id=use["toolUseId"], name=use["name"])]

    def _delta(self, block: int, delta: dict[str, Any]) -> list[StreamEvent]:
        text = delta.get("text")
        if isinstance(text, str):
            return [TextDelta(text)] if text else []
        use = delta.get("toolUse")
        if isinstance(use, dict):
            piece = use.get("input") or ""
            call = self._blocks[block]  # a tool-use delta without its start is malformed
            if call == _JSON_ANSWER:
                return [TextDelta(piece)] if piece else []
            return [ToolCallDelta(call_index=call, arguments=piece)] if piece else []
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            return self._reasoning(reasoning)
        # A ``citation`` delta (its text came as text) and others have no core counterpart.
        return []

    def _reasoning(self, reasoning: dict[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        text = reasoning.get("text")
        if isinstance(text, str) and text:
            events.append(ReasoningDelta(text))
        signature = reasoning.get("signature")
        if isinstance(signature, str) and signature:
            events.append(ReasoningDelta("", signature=signature))
        redacted = reasoning.get("redactedContent")
        if redacted:
            events.append(NativeDelta(claude.redacted_block(redacted)))
        return events

    def _maybe_finish(self) -> list[StreamEvent]:
        if self._usage is None or self._stop_reason is None or self.done:
            return []
        self.done = True
        reason: FinishReason = finish_reason(self._stop_reason, self._calls > 0, self._label)
        if self._stop_reason in claude.OWN_STOPS:
            stop = NativeDelta(claude.stop_delta(str(self._stop_reason), self._stop))
            return [self._usage, stop, Finished(reason)]
        return [self._usage, Finished(reason)]
