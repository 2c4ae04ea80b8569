"""Prompts and answers as the GenAI conventions record them (content capture on).

``gen_ai.input.messages`` and ``gen_ai.output.messages`` are JSON text: a list of messages,
each a role and its parts; an output message is one choice (candidate) of the answer and must
name the reason it finished (``finish_reason``, required by the conventions' output-messages
schema). Every text is redacted before it is recorded. Nothing here runs with capture off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

import orjson

from modelyard.core.chat import ChatResult, Message
from modelyard.core.events import ToolCallDelta
from modelyard.observability.tracing import Redact

# Our finish reasons as the conventions name theirs (``stop``, ``length``, ``content_filter``,
# ``tool_call``, ``error``); one they do not name would be recorded as it is.
GENAI_FINISH: Final[Mapping[str, str]] = MappingProxyType(
    {
        "stop": "stop",
        "length": "length",
        "tool_calls": "tool_call",
        "content_filter": "content_filter",
    }
)
# A choice whose end was never told: cut short by a failure (or the client leaving), else an
# answer that simply ended (the adapters read a reason they do not know as ``stop`` too).
CUT_SHORT: Final = "error"
ENDED: Final = "stop"

# A tool call as recorded: its id, the tool's name, the arguments as the model wrote them.
Call = tuple[str | None, str, str]
# One choice as recorded: its text, its refusal (None: none), its finish reason, its calls.
Choice = tuple[str, str | None, str, Sequence[Call]]


def input_messages(messages: Sequence[Message], redact: Redact) -> str:
    """The messages sent, as the conventions record them (role and text parts), redacted."""
    return orjson.dumps(
        [
            {"role": m.role, "parts": [{"type": "text", "content": redact(m.text())}]}
            for m in messages
        ]
    ).decode()


def output_messages(choices: Sequence[Choice], redact: Redact) -> str:
    """One output message per choice: its text part, its refusal as a part of type
    ``refusal`` (the conventions' generic part), its tool calls as ``tool_call`` parts (the
    arguments as the model wrote them), and its finish reason, redacted."""
    messages = []
    for text, refusal, reason, calls in choices:
        parts: list[dict[str, object]] = []
        if text or (refusal is None and not calls):  # an empty answer is an empty text
            parts.append({"type": "text", "content": redact(text)})
        if refusal is not None:
            parts.append({"type": "refusal", "content": redact(refusal)})
        parts.extend(
            {"type": "tool_call", "id": call_id, "name": name, "arguments": redact(arguments)}
            for call_id, name, arguments in calls
        )
        messages.append({"role": "assistant", "parts": parts, "finish_reason": reason})
    return orjson.dumps(messages).decode()


def whole_answer(result: ChatResult, redact: Redact) -> str:
    """A whole answer's choices, in index order."""
    return output_messages(
        [
            (
                c.message.text(),
                c.message.refusal,
                ENDED if c.finish_reason is None else GENAI_FINISH[c.finish_reason],
                [(t.id, t.name, t.arguments) for t in c.message.tool_calls],
            )
            for c in sorted(result.choices, key=lambda c: c.index)
        ],
        redact,
    )


class Captured:
    """A streamed answer's words and finish reasons, per choice, as they arrive."""

    __slots__ = ("calls", "finishes", "refusals", "texts")

    def __init__(self) -> None:
        self.texts: dict[int, list[str]] = {}
        self.refusals: dict[int, list[str]] = {}
        self.finishes: dict[int, str] = {}
        # choice -> call index -> [id, name, arguments so far]
        self.calls: dict[int, dict[int, list[str | None]]] = {}

    def text(self, index: int, piece: str) -> None:
        self.texts.setdefault(index, []).append(piece)

    def refusal(self, index: int, piece: str) -> None:
        self.refusals.setdefault(index, []).append(piece)

    def tool_call(self, delta: ToolCallDelta) -> None:
        """A piece of a tool call: its id and name come with its first piece."""
        call = self.calls.setdefault(delta.index, {}).setdefault(delta.call_index, [None, "", ""])
        if delta.id is not None:
            call[0] = delta.id
        if delta.name is not None:
            call[1] = delta.name
        call[2] = f"{call[2] or ''}{delta.arguments}"

    def finished(self, index: int, reason: str) -> None:
        self.finishes[index] = GENAI_FINISH.get(reason, reason)

    def messages(self, failed: bool, redact: Redact) -> str:
        """The answer as far as it went: a choice that never finished ended with ``error``
        when the call failed (or the client left), else ``stop``; choice 0 at least."""
        missing = CUT_SHORT if failed else ENDED
        refusals, calls = self.refusals, self.calls
        choices = [
            (
                "".join(self.texts.get(i, ())),
                "".join(refusals[i]) if i in refusals else None,
                self.finishes.get(i, missing),
                [
                    (call_id, str(name), str(arguments))
                    for _, (call_id, name, arguments) in sorted(calls.get(i, {}).items())
                ],
            )
            for i in sorted({0, *self.texts, *refusals, *self.finishes, *calls})
        ]
        return output_messages(choices, redact)
