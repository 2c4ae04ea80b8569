"""Screening texts and streams: block, redact (reversible), flag; the stream look-back."""

from __future__ import annotations

import pytest

from modelyard.core.errors import ContentBlocked
from modelyard.guardrails.engine import StreamScreen, Vault, Verdicts, screen
from modelyard.guardrails.model import Guard
from modelyard.guardrails.pii import pii_guard
from modelyard.guardrails.textguards import deny_guard, size_guard

PII = pii_guard({})


def guard(action: str, detector: object = PII, name: str = "pii") -> Guard:
    return Guard(name, name, frozenset({"input", "output"}), action, detector)  # type: ignore[arg-type]  # literal chosen by the test


def test_redact_is_consistent_and_reversible() -> None:
    vault, verdicts = Vault(), Verdicts()
    text = "mail bob@example.com or bob@example.com, card 4111 1111 1111 1111"
    out = screen([guard("redact")], "input", text, vault, verdicts)
    assert out == "mail [EMAIL_1] or [EMAIL_1], card [CARD_1]"
    assert vault.restore("reply to [EMAIL_1] about [CARD_1] and [EMAIL_9]") == (
        "reply to bob@example.com about 4111 1111 1111 1111 and [EMAIL_9]"
    )
    by_cat = {v.category: v for v in verdicts.all()}
    assert by_cat["email"].count == 2 and by_cat["card"].action == "redact"


def test_block_raises_naming_guard_and_category() -> None:
    verdicts = Verdicts()
    with pytest.raises(ContentBlocked) as info:
        screen([guard("block")], "input", "iban DE89370400440532013000", Vault(), verdicts)
    err = info.value
    assert (err.guard, err.category, err.code, err.status) == ("pii", "iban", "content_filter", 400)
    assert "DE89" not in err.message
    assert [v.action for v in verdicts.all()] == ["block"]


def test_flag_changes_nothing_but_records() -> None:
    verdicts = Verdicts()
    text = "mail bob@example.com"
    assert screen([guard("flag")], "output", text, Vault(), verdicts) == text
    assert [(v.category, v.action) for v in verdicts.all()] == [("email", "flag")]


def test_clean_text_is_the_same_object() -> None:
    text = "nothing to see"
    assert screen([guard("redact")], "input", text, Vault(), Verdicts()) is text


def stream(chunks: list[str], guards: list[Guard], restore: Vault | None = None) -> str:
    screen_ = StreamScreen(guards, "output", restore or Vault(), Verdicts(), restore is not None)
    return "".join(screen_.feed(c) for c in chunks) + screen_.flush()


def test_card_split_over_three_deltas_is_redacted() -> None:
    chunks = ["Your card is 4111 11", "11 1111 ", "1111, thanks. " + "More text. " * 30]
    out = stream(chunks, [guard("redact")])
    assert "4111" not in out and "[CARD_1]" in out
    assert out.endswith("More text. ")


@pytest.mark.parametrize("size", [1, 2, 3, 7, 50])
def test_any_chunking_gives_the_whole_text_answer(size: int) -> None:
    text = (
        "Reach me at ann@example.org or +1 415 555 2671; card 5500 0000 0000 0004. " * 6
    ).strip()
    whole = screen([guard("redact")], "output", text, Vault(), Verdicts())
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    assert stream(chunks, [guard("redact")]) == whole


def test_stream_restores_placeholders_split_across_deltas() -> None:
    vault = Vault()
    screen([guard("redact")], "input", "I am bob@example.com", vault, Verdicts())
    out = stream(["Hello [EMA", "IL_", "1], how are you?"], [guard("redact")], vault)
    assert out == "Hello bob@example.com, how are you?"


def test_stream_block_mid_way_raises_before_release() -> None:
    deny = guard("block", deny_guard({"words": ["forbidden"]}), "deny")
    screen_ = StreamScreen([deny], "output", Vault(), Verdicts(), False)
    released = screen_.feed("this is fine " * 20)
    with pytest.raises(ContentBlocked):
        released += screen_.feed("and now forb")
        released += screen_.feed("idden words")
        released += screen_.flush()
    assert "forb" not in released


def test_size_guard() -> None:
    size = guard("block", size_guard({"max_chars": 10}), "max_size")
    with pytest.raises(ContentBlocked, match="too_large"):
        screen([size], "input", "x" * 11, Vault(), Verdicts())
    assert screen([size], "input", "x" * 10, Vault(), Verdicts()) == "x" * 10


def test_deny_words_whole_and_case_insensitive() -> None:
    deny = deny_guard({"words": ["secret project"], "patterns": [r"\bproj-\d+\b"]})
    assert [f.category for f in deny.scan("The SECRET PROJECT and proj-12")] == ["denied"] * 2
    assert deny.scan("secret projects proj-x") == []
    with pytest.raises(ValueError, match=r"patterns\[0\]"):
        deny_guard({"patterns": ["("]})


@pytest.mark.parametrize(
    ("chunks", "secret"),
    [
        (["write to ann.l", "ee@exam", "ple.org now " + "x " * 100], "ann.lee@example.org"),
        (["call +1 415 ", "555 26", "71 today " + "y " * 100], "+1 415 555 2671"),
        (
            ["iban DE89 3704 ", "0044 0532 ", "0130 00 ok " + "z " * 100],
            "DE89 3704 0044 0532 0130 00",
        ),
        (
            ["card ４１１１ １１１１ ", "１１１１ １１１１ ok " + "w " * 100],
            "４１１１ １１１１ １１１１ １１１１",
        ),
    ],
)
def test_adversarial_pii_split_across_chunks(chunks: list[str], secret: str) -> None:
    out = stream(chunks, [guard("redact")])
    assert secret not in out
    assert "[" in out and "]" in out
