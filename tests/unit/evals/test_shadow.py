from collections.abc import Sequence

import pytest

from modelyard.core.chat import Message
from modelyard.evals.graders import GraderContext, GraderError
from modelyard.evals.runner import Grading
from modelyard.evals.shadow import ShadowOptions, ShadowPair, evaluate_shadow


def pairs(n: int = 20) -> list[ShadowPair]:
    out = []
    for i in range(n):
        out.append(
            ShadowPair.from_mapping(
                {
                    "id": f"s{i}",
                    "request": {"messages": [{"role": "user", "content": f"capital {i}?"}]},
                    "primary_output": "Paris",
                    # The candidate agrees on 3 of 4 requests and failed on one in ten.
                    "candidate_output": "Paris" if i % 4 else "Lyon",
                    "candidate_error": "HTTP 503" if i == 5 else None,
                    "primary_latency_s": 1.0,
                    "candidate_latency_s": 0.5,
                    "primary_cost_micros": 100,
                    "candidate_cost_micros": 20,
                }
            )
        )
    return out


async def test_agreement_with_the_primary():
    report = await evaluate_shadow(pairs(), Grading(), ShadowOptions(mode="exact", name="sh"))
    primary, candidate = report.summary("primary"), report.summary("candidate")
    assert primary.score == 1.0
    assert candidate.score == pytest.approx(14 / 20) and candidate.errors == 1
    assert candidate.cost_per_1k_micros == 20_000 and candidate.latency_p50_s == 0.5
    assert report.best == "primary" and report.dataset == "sh"


async def test_pairwise_judge_in_both_orders():
    asked: list[str] = []

    async def judge(messages: Sequence[Message]) -> str:
        text = messages[-1].text()
        asked.append(text)
        a = text.split("Answer A:\n<<<\n")[1].split("\n>>>")[0]
        return '{"winner": "%s"}' % ("A" if a == "Paris" else "B")

    grading = Grading(context=GraderContext(complete=judge))
    report = await evaluate_shadow(pairs(8), grading, ShadowOptions(mode="pairwise"))
    assert len(asked) == 2 * 7  # both orders, no call for the failed candidate
    scores = {r.case_id: r.score for r in report.results if r.deployment == "candidate"}
    assert scores["s1"] == 0.5 and scores["s4"] == 0.0  # tie when equal; Lyon loses
    assert report.summary("primary").score > report.summary("candidate").score


async def test_modes_need_their_models_and_records_are_checked():
    with pytest.raises(GraderError, match="judge"):
        await evaluate_shadow(pairs(1), Grading(), ShadowOptions(mode="pairwise"))
    with pytest.raises(ValueError, match="unknown shadow mode"):
        await evaluate_shadow(pairs(1), Grading(), ShadowOptions(mode="vibes"))
    with pytest.raises(ValueError, match="primary_output"):
        ShadowPair.from_mapping({"messages": [{"role": "user", "content": "q"}]}, "f:3")
    with pytest.raises(ValueError, match="f:3: input"):
        ShadowPair.from_mapping({"primary_output": "x"}, "f:3")


def refusing_pair(primary: str | None, candidate: str | None) -> ShadowPair:
    return ShadowPair.from_mapping(
        {
            "id": "r",
            "messages": [{"role": "user", "content": "capital?"}],
            "primary_output": "" if primary else "Paris",
            "candidate_output": "" if candidate else "Paris",
            "primary_refusal": primary,
            "candidate_refusal": candidate,
        }
    )


@pytest.mark.parametrize("mode", ["exact", "pairwise", "judge"])
async def test_a_refusal_is_no_answer_and_the_other_side_is_graded_alone(mode: str):
    asked: list[str] = []

    async def judge(messages: Sequence[Message]) -> str:
        asked.append(messages[-1].text())
        return '{"score": 9, "reason": "fine"}'

    grading = Grading(context=GraderContext(complete=judge))
    for primary, candidate in (("I can't help.", None), (None, "I won't say.")):
        asked.clear()
        report = await evaluate_shadow(
            [refusing_pair(primary, candidate)], grading, ShadowOptions(mode=mode)
        )
        got = {r.deployment: r for r in report.results}
        refuser, answerer = (
            (got["primary"], got["candidate"]) if primary else (got["candidate"], got["primary"])
        )
        assert refuser.refused and refuser.output == (primary or candidate)
        assert (refuser.score, refuser.passed) == (0.0, False)
        assert refuser.reason.startswith("refused: ") and refuser.error is None
        assert not answerer.refused and answerer.output == "Paris" and answerer.passed
        # The judge is asked about the answer alone in judge mode; no pairwise verdict is
        # asked of a refusal, and reference modes have no reference to grade against.
        if mode == "judge":
            assert len(asked) == 1 and "Paris" in asked[0] and answerer.score == 0.9
        else:
            assert asked == [] and answerer.score == 1.0
        assert report.summary(refuser.deployment).refusals == 1


async def test_both_refused_both_fail_and_a_bad_refusal_is_named():
    report = await evaluate_shadow(
        [refusing_pair("No.", "Nope.")], Grading(), ShadowOptions(mode="exact")
    )
    assert [(r.refused, r.score, r.passed) for r in report.results] == [(True, 0.0, False)] * 2
    with pytest.raises(ValueError, match="f:2: candidate_refusal: must be a string or null"):
        ShadowPair.from_mapping(
            {
                "messages": [{"role": "user", "content": "q"}],
                "primary_output": "x",
                "candidate_refusal": 3,
            },
            "f:2",
        )
