from collections.abc import Sequence

import pytest

from modelyard.core.chat import Message
from modelyard.evals.judge import (
    PAIRWISE_V1,
    PROMPTS,
    RUBRIC_V1,
    JudgeParseError,
    judge_pairwise,
    parse_score,
    parse_winner,
)


@pytest.mark.parametrize(
    ("reply", "score", "reason"),
    [
        ('{"score": 7, "reason": "ok"}', 0.7, "ok"),
        ('Here you go:\n```json\n{"score": "9", "reason": "great"}\n```', 0.9, "great"),
        ("Score: 6/10\nReason: partly right", 0.6, "partly right"),
        ("**Score**: 3\nreason = vague", 0.3, "vague"),
        ("I would give it 8 out of 10.", 0.8, None),
        ("score: 85/100", 0.85, None),
        ('{"score": 14}', 1.0, None),
    ],
)
def test_parse_score_is_robust(reply, score, reason):
    got, why = parse_score(reply)
    assert got == pytest.approx(score)
    if reason is not None:
        assert why == reason


def test_parse_score_refuses_replies_without_a_score():
    with pytest.raises(JudgeParseError):
        parse_score("I cannot grade this.")


@pytest.mark.parametrize(
    ("reply", "winner"),
    [
        ('{"winner": "B", "reason": "x"}', "B"),
        ("Winner: A", "A"),
        ("[[tie]]", "tie"),
        ("b", "B"),
        ('{"winner": "Tie"}', "tie"),
    ],
)
def test_parse_winner(reply, winner):
    assert parse_winner(reply)[0] == winner


def test_parse_winner_refuses_nonsense():
    with pytest.raises(JudgeParseError):
        parse_winner("both are fine I guess")


def test_prompts_are_versioned_and_listed():
    assert RUBRIC_V1.id == "rubric@1" and PAIRWISE_V1.id == "pairwise@1"
    assert set(PROMPTS) == {"rubric@1", "pairwise@1"}


def _first_answer_biased_judge(prefers: str):
    """A judge that always picks the answer in position A, unless it sees ``prefers``."""

    async def complete(messages: Sequence[Message]) -> str:
        text = messages[-1].text()
        a = text.split("Answer A:\n<<<\n")[1].split("\n>>>")[0]
        b = text.split("Answer B:\n<<<\n")[1].split("\n>>>")[0]
        if prefers in (a, b):
            return '{"winner": "%s", "reason": "better"}' % ("A" if a == prefers else "B")
        return '{"winner": "A", "reason": "first looks fine"}'

    return complete


async def test_pairwise_asks_both_orders_and_cancels_position_bias():
    # A judge that always says "A": each answer wins once, so the score is a tie, not a win.
    biased = await judge_pairwise(
        _first_answer_biased_judge("none"), question="q", first="x", second="y"
    )
    assert biased.score == 0.5
    assert "position bias" in biased.reason
    # A judge that really prefers the second answer: it wins in both orders.
    real = await judge_pairwise(
        _first_answer_biased_judge("y"), question="q", first="x", second="y"
    )
    assert real.score == 1.0
    loss = await judge_pairwise(
        _first_answer_biased_judge("x"), question="q", first="x", second="y"
    )
    assert loss.score == 0.0
    assert real.prompt == "pairwise@1"
