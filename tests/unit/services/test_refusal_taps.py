"""The stream taps see a refusal (``RefusalDelta``) whether the answer came streamed or whole
(``result_events``): the usage tap counts its characters and its first piece as the first
token, the shadow tap keeps it apart from the answer's text, to compare with the candidate's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from modelyard.core.chat import ChatResult, Choice, Message, TextPart, ToolCall, Usage
from modelyard.core.events import Finished, RefusalDelta, StreamEvent, TextDelta, UsageReport
from modelyard.services.chat import Batch
from modelyard.services.metering import Ticket
from modelyard.services.pipeline import Tap, result_events
from modelyard.services.shadow import PrimaryAnswer, result_refusal, result_text
from modelyard.services.stages import _ShadowTap, _UsageTap

REFUSAL = "I can't help with that."


def _refused(usage: Usage | None = None) -> ChatResult:
    message = Message("assistant", (), refusal=REFUSAL)
    return ChatResult([Choice(0, message, "stop")], usage)


def test_a_whole_refusal_is_a_refusal_event() -> None:
    usage = Usage(input_tokens=3, output_tokens=5)
    assert result_events(_refused(usage)) == [
        RefusalDelta(REFUSAL, 0),
        Finished("stop", 0),
        UsageReport(usage),
    ]
    both = Message("assistant", (TextPart("Hi"),), refusal="No")
    events = result_events(ChatResult([Choice(1, both, None)], None))
    assert events == [RefusalDelta("No", 1), TextDelta("Hi", 1)]


class _Reader(Tap):
    """A tap that only reads batches (``saw``): a whole answer reaches it as events."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: list[StreamEvent] = []

    def saw(self, batch: Batch) -> None:
        self.seen.extend(batch)


def test_a_reading_tap_sees_a_whole_answers_refusal() -> None:
    reader = _Reader()
    reader.result(_refused())
    assert RefusalDelta(REFUSAL, 0) in reader.seen


def _ticket() -> Ticket:
    return Ticket(cast(Any, None), cast(Any, None), 0.0, 0.0)


def test_the_usage_tap_counts_a_streamed_refusal() -> None:
    ticket = _ticket()
    tap = _UsageTap(ticket)
    tap.saw([RefusalDelta("I can't", 0)])
    assert ticket.first_token_at is not None  # a refusal's first piece is the first token
    tap.saw([RefusalDelta(" help.", 0), TextDelta("x", 0), Finished("stop", 0)])
    assert ticket.output_chars == len("I can't help.x")


def test_the_usage_tap_counts_a_whole_refusal_without_usage() -> None:
    ticket = _ticket()
    _UsageTap(ticket).result(_refused())
    assert ticket.output_chars == len(REFUSAL)


class _Mirror:
    def __init__(self) -> None:
        self.answers: list[PrimaryAnswer] = []

    def mirror(self, *args: Any) -> None:
        self.answers.append(args[-1])


def _shadowed(feed: Any) -> tuple[str, str | None]:
    """The primary's answer as the shadow tap hands it to the mirror: text, refusal."""
    mirror = _Mirror()
    tap = _ShadowTap(cast(Any, mirror), cast(Any, None))
    feed(tap)
    served = SimpleNamespace(provider="p", model="m")
    run = SimpleNamespace(status=200, served=served, pipeline=None, request=None, caller=None)
    tap.end(cast(Any, run))
    (answer,) = mirror.answers
    return answer.text, answer.refusal


def test_the_shadow_keeps_a_refusal_apart_streamed_or_whole() -> None:
    call = ToolCall("c1", "look", "{}")
    message = Message("assistant", (TextPart("Hi"),), tool_calls=(call,), refusal="No")
    whole = ChatResult([Choice(0, message, "stop")], None)
    assert (result_text(whole), result_refusal(whole)) == ("Hi\nlook({})", "No")
    assert _shadowed(lambda tap: tap.result(whole)) == ("Hi\nlook({})", "No")
    streamed: list[StreamEvent] = [
        TextDelta("H", 0),
        RefusalDelta("N", 0),
        TextDelta("i", 0),
        RefusalDelta("o", 0),
        RefusalDelta("other choice", 1),
    ]
    assert _shadowed(lambda tap: tap.saw(streamed)) == ("Hi", "No")


def test_an_answer_is_no_refusal_for_the_shadow() -> None:
    whole = ChatResult([Choice(0, Message("assistant", (TextPart("Hi"),)), "stop")], None)
    assert _shadowed(lambda tap: tap.result(whole)) == ("Hi", None)
    assert _shadowed(lambda tap: tap.saw([TextDelta("Hi", 0)])) == ("Hi", None)
