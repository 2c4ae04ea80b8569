"""Events of a streamed answer, as every provider emits them and every protocol encodes them.

A failure after the stream has started is raised as a ``ModelyardError`` from the iterator
rather than sent as an event: the protocol layer turns it into its dialect's in-stream error.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.core.chat import FinishReason, Usage


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str
    index: int = 0


@dataclass(slots=True, frozen=True)
class ReasoningDelta:
    """A piece of reasoning; ``signature`` (usually with empty ``text``) closes a signed block."""

    text: str
    index: int = 0
    signature: str | None = None


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    """A piece of a tool call; ``id`` and ``name`` come with the first piece of each call."""

    call_index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None
    index: int = 0
    custom: bool = False  # a free-form tool's raw input (see ``core.chat.ToolCall.custom``)


@dataclass(slots=True, frozen=True)
class UsageReport:
    usage: Usage


@dataclass(slots=True, frozen=True)
class Finished:
    reason: FinishReason
    index: int = 0


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | UsageReport | Finished
