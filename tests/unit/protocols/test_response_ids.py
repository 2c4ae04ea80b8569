"""Response and conversation ids: OpenAI's shape (a prefix and hex), unguessable, and they
say when they were made (``core.ids``)."""

from __future__ import annotations

from modelyard.core.ids import id_time, timed_id
from modelyard.protocols.openai.responses.request import new_id


def test_an_id_says_when_it_was_made_and_keeps_128_random_bits():
    made = timed_id("resp", 1_800_000_000.123)
    assert made.startswith("resp_") and len(made) == len("resp_") + 12 + 32
    assert all(c in "0123456789abcdef" for c in made[5:])
    assert id_time(made, "resp") == 1_800_000_000.123
    assert id_time(made, "conv") is None
    again = timed_id("resp", 1_800_000_000.123)
    assert again[:17] == made[:17] and again[17:] != made[17:]  # same ms, other random bits


def test_ids_not_of_this_shape_have_no_time():
    for other in ("resp_", "resp_1", "resp_" + "ab" * 16, "resp_" + "g" * 44, "resp_" + "_1" * 22):
        assert id_time(other, "resp") is None


def test_new_ids_are_timed():
    made = new_id("conv")
    assert made.startswith("conv_") and id_time(made, "conv") is not None
