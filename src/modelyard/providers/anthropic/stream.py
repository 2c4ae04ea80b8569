"""Turn the Messages API's SSE events into core stream events.

The API streams ``message_start`` (input usage), then per content block ``content_block_start``,
``content_block_delta``\\ s and ``content_block_stop``, then ``message_delta`` (stop reason and the
cumulative output count) and ``message_stop``; ``ping`` may come anywhere, and an ``error`` event
may replace the rest of the stream. Block indices count every block (thinking, text, tool use),
while core tool-call indices count tool calls only, so they are renumbered here.

Blocks the core does not model (``redacted_thinking``, server-tool blocks such as
``server_tool_use`` and ``web_search_tool_result``) travel as ``NativeDelta``\\ s: the block as
it started (``{"content_block": ...}``), then each of its deltas (``{"delta": ...}``); so do a
text block's ``citations_delta``\\ s, and the start of a text block that has ``citations`` or
follows a text or such a block (the core would merge the two), so that a Messages client gets
every block in its place. An encoder of another dialect ignores them.

A stream that stopped for a reason the core's finish reason folds (see
``providers.anthropic.response``) ends with one more ``NativeDelta`` before its ``Finished``:
``{"message_delta": {...}}``, the stop fields of the upstream's ``message_delta``; so does one
whose ``message_delta`` names the ``container`` the answer ran in (the code execution tool),
with that ``container``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from modelyard.core.chat import Native, Usage
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
from modelyard.providers.anthropic.errors import stream_error
from modelyard.providers.anthropic.messages import ORIGIN
from modelyard.providers.anthropic.response import (
    PLAIN_STOPS,
    finish_reason,
    own_stop,
    parse_usage,
    stop_fields,
)
from modelyard.providers.sse import SSEEvent


@dataclass(slots=True)
class _Block:
    # "text", "thinking", "tool" (a client's tool), "json" (the JSON-answer tool), "native" (a
    # block the core does not model)
    kind: str
    call_index: int = -1
    start_input: Any = None
    emitted: bool = False


@dataclass(slots=True)
class StreamState:
    """Feed it each SSE event; ``finished`` turns true at ``message_stop``."""

    json_tool: str | None
    label: str
    finished: bool = False
    _blocks: dict[int, _Block] = field(default_factory=dict)
    _calls: int = 0
    _usage: dict[str, Any] = field(default_factory=dict)
    _stop_reason: str | None = None
    _kept_stop: dict[str, Any] | None = None  # the stop fields, when the finish reason folds them
    _container: Any = None  # the message_delta's container (code execution), when it names one

    @property
    def done(self) -> bool:
        return self.finished

    def event(self, frame: SSEEvent) -> list[StreamEvent]:
        return self.feed(frame.event, frame.data)

    def end(self) -> list[StreamEvent]:
        raise UpstreamConnectionError(f"{self.label}: the stream ended before message_stop")

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        payload = self._json(data)
        kind = payload.get("type") or event
        try:
            return self._dispatch(kind, payload)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UpstreamError(
                f"{self.label}: the upstream sent a malformed {kind} event"
            ) from exc

    def _dispatch(self, kind: object, payload: dict[str, Any]) -> list[StreamEvent]:
        if kind == "message_start":
            self._merge_usage(payload["message"].get("usage"))
        elif kind == "content_block_start":
            return self._start(int(payload["index"]), payload["content_block"])
        elif kind == "content_block_delta":
            return self._delta(self._blocks.get(int(payload["index"])), payload["delta"])
        elif kind == "content_block_stop":
            return self._stop(self._blocks.get(int(payload["index"])))
        elif kind == "message_delta":
            delta = payload.get("delta", {})
            reason = delta.get("stop_reason")
            self._stop_reason = reason or self._stop_reason
            if reason not in PLAIN_STOPS and own_stop(reason):
                self._kept_stop = stop_fields(delta)
            self._container = delta.get("container") or self._container
            self._merge_usage(payload.get("usage"))
        elif kind == "message_stop":
            self.finished = True
            usage = parse_usage(self._usage) or Usage()
            reason = finish_reason(self._stop_reason, self._calls > 0)
            if self._kept_stop is None and self._container is None:
                return [UsageReport(usage), Finished(reason)]
            return [UsageReport(usage), self._kept(), Finished(reason)]
        elif kind == "error":
            raise stream_error(payload, self.label)
        # ping, and event types added after this was written, carry nothing for us.
        return []

    def _kept(self) -> NativeDelta:
        """The upstream's own ``message_delta`` fields the core does not say: its folded stop
        fields, its container."""
        fields = dict(self._kept_stop or {})
        if self._container is not None:
            fields["container"] = self._container
        return _native({"message_delta": fields})

    def _start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        kind = block["type"]
        if kind == "text":
            self._blocks[index] = _Block("text")
            if block.get("citations") or (index and self._follows_text(index)):
                return self._text_block(block)
            return [TextDelta(block["text"])] if block.get("text") else []
        if kind == "thinking":
            self._blocks[index] = _Block("thinking")
            return [ReasoningDelta(block["thinking"])] if block.get("thinking") else []
        if kind == "tool_use" and block["name"] == self.json_tool:
            self._blocks[index] = _Block("json", start_input=block.get("input"))
            return []
        if kind == "tool_use":
            call = _Block("tool", call_index=self._calls, start_input=block.get("input"))
            self._calls += 1
            self._blocks[index] = call
            return [ToolCallDelta(call.call_index, "", id=block["id"], name=block["name"])]
        # redacted_thinking, a server tool's call or result: no core counterpart
        self._blocks[index] = _Block("native")
        return [_native({"content_block": block})]

    def _follows_text(self, index: int) -> bool:
        """Whether the block before ``index`` is one the core would merge a text block into."""
        before = self._blocks.get(index - 1)
        return before is not None and before.kind in ("text", "native")

    def _text_block(self, block: dict[str, Any]) -> list[StreamEvent]:
        """A text block that starts where a Messages client must see it start (see above)."""
        events: list[StreamEvent] = [_native({"content_block": block})]
        if block.get("text"):
            events.append(TextDelta(block["text"]))
        return events

    def _delta(self, block: _Block | None, delta: dict[str, Any]) -> list[StreamEvent]:
        kind = delta["type"]
        if block is None:
            return []
        if kind == "text_delta":
            return [TextDelta(delta["text"])] if delta["text"] else []
        if block.kind == "native" or kind == "citations_delta":
            return [_native({"delta": delta})]
        if kind == "thinking_delta":
            return [ReasoningDelta(delta["thinking"])] if delta["thinking"] else []
        if kind == "signature_delta":
            return [ReasoningDelta("", signature=delta["signature"])]
        if kind == "input_json_delta" and delta["partial_json"]:
            block.emitted = True
            if block.kind == "json":
                return [TextDelta(delta["partial_json"])]
            return [ToolCallDelta(block.call_index, delta["partial_json"])]
        return []

    def _stop(self, block: _Block | None) -> list[StreamEvent]:
        if block is None or block.kind not in ("tool", "json") or block.emitted:
            return []
        # A call without input streams no JSON at all; give clients the "{}" a whole answer has.
        arguments = orjson.dumps(block.start_input or {}).decode()
        if block.kind == "json":
            return [TextDelta(arguments)]
        return [ToolCallDelta(block.call_index, arguments)]

    def _merge_usage(self, raw: object) -> None:
        # message_delta counts are cumulative, so a later value replaces an earlier one.
        if isinstance(raw, dict):
            self._usage.update({k: v for k, v in raw.items() if v is not None})

    def _json(self, data: str) -> dict[str, Any]:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"{self.label}: the upstream sent an event that is not JSON"
            ) from exc
        if not isinstance(payload, dict):
            raise UpstreamError(f"{self.label}: the upstream sent an event that is not an object")
        return payload


def _native(fields: dict[str, Any]) -> NativeDelta:
    return NativeDelta(Native(ORIGIN, fields))
