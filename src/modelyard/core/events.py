"""Events of a streamed answer, as every provider emits them and every protocol encodes them.

A failure after the stream has started is raised as a ``ModelyardError`` from the iterator
rather than sent as an event: the protocol layer turns it into its dialect's in-stream error.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.core.chat import FinishReason, Native, Usage


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str
    index: int = 0


@dataclass(slots=True, frozen=True)
class RefusalDelta:
    """A piece of the model's refusal (``core.chat.Message.refusal``)."""

    text: str
    index: int = 0


@dataclass(slots=True, frozen=True)
class NativeDelta:
    """Unmodelled fields of one streamed piece of choice ``index`` (``core.chat.Native``):
    they belong with the events of that choice that follow (an encoder of the same dialect
    writes them in the same chunk); every other encoder ignores them."""

    native: Native
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
    # The usage as the upstream wrote it (its unmodelled token details), for its dialect.
    native: Native | None = None


@dataclass(slots=True, frozen=True)
class Finished:
    reason: FinishReason
    index: int = 0


StreamEvent = (
    TextDelta | ReasoningDelta | RefusalDelta | ToolCallDelta | UsageReport | Finished | NativeDelta
)
