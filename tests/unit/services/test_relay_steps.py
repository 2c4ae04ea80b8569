"""How a stream's relay runs the taps on a batch (the events of one upstream read): a tap that
only looks sees the batch whole, once; taps that may change or refuse events see them one by
one; what passed before a refusal still goes through the steps after it."""

from __future__ import annotations

import pytest

from modelyard.core.events import StreamEvent, TextDelta
from modelyard.services.chat import Batch
from modelyard.services.pipeline import Tap, _passed, _steps, _through


class _Looks(Tap):
    __slots__ = ("batches", "fails")

    def __init__(self, fails: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.fails = fails

    def saw(self, batch: Batch) -> None:
        self.batches.append([e.text for e in batch if isinstance(e, TextDelta)])
        if self.fails:
            raise RuntimeError("a looking tap's bug")


class _Shouts(Tap):
    """Upper-cases text; refuses the event whose text is ``refuse``."""

    __slots__ = ("refuse",)

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse

    def event(self, event: StreamEvent) -> StreamEvent:
        if isinstance(event, TextDelta):
            if event.text == self.refuse:
                raise ValueError(f"refused {event.text}")
            return TextDelta(event.text.upper(), event.index)
        return event


class _Idle(Tap):
    __slots__ = ()


def _batch(*texts: str) -> Batch:
    return [TextDelta(t) for t in texts]


def _texts(batch: Batch) -> list[str]:
    return [e.text for e in batch if isinstance(e, TextDelta)]


def test_looking_taps_stand_alone_event_taps_run_together_idle_taps_are_left_out() -> None:
    first, a, b, idle, second, c = _Looks(), _Shouts(), _Shouts(), _Idle(), _Looks(), _Shouts()
    assert _steps([first, a, b, idle, second, c]) == (first, (a, b), second, (c,))
    assert _steps([idle]) == ()


async def test_a_looking_tap_sees_each_batch_once_as_the_taps_before_it_passed_it() -> None:
    before, after = _Looks(), _Looks()
    steps = _steps([before, _Shouts(), after])
    out, failed = await _passed(_through, steps, _batch("a", "b", "c"))
    assert failed is None and _texts(out) == ["A", "B", "C"]
    out, failed = await _passed(_through, steps, _batch("d"))
    assert before.batches == [["a", "b", "c"], ["d"]]
    assert after.batches == [["A", "B", "C"], ["D"]]


async def test_what_passed_before_a_refusal_goes_through_the_later_steps_then_it_fails() -> None:
    before, after = _Looks(), _Looks()
    steps = _steps([before, _Shouts(refuse="c"), after])
    out, failed = await _passed(_through, steps, _batch("a", "b", "c", "d"))
    assert _texts(out) == ["A", "B"]
    assert failed is not None and str(failed.__cause__) == "refused c"
    assert before.batches == [["a", "b", "c", "d"]]
    assert after.batches == [["A", "B"]]  # as if one event at a time: it saw what passed


async def test_a_later_refusal_on_an_earlier_event_is_the_one_that_counts() -> None:
    # One event at a time, "b" would have been refused by the second tap before "c" ever
    # reached the first tap's refusal.
    steps = _steps([_Shouts(refuse="c"), _Looks(), _Shouts(refuse="B")])
    out, failed = await _passed(_through, steps, _batch("a", "b", "c"))
    assert _texts(out) == ["A"]
    assert failed is not None and str(failed.__cause__) == "refused B"


@pytest.mark.parametrize("position", [0, 1])
async def test_a_looking_tap_that_fails_stops_its_whole_batch(position: int) -> None:
    taps: list[Tap] = [_Shouts()]
    taps.insert(position, _Looks(fails=True))
    out, failed = await _passed(_through, _steps(taps), _batch("a", "b"))
    assert out == []
    assert failed is not None and isinstance(failed.__cause__, RuntimeError)
