"""The learned router's features, training and artifact."""

from __future__ import annotations

import random

import pytest

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelyardError
from modelyard.routing import BreakerSettings, Deployment, HealthBoard, PlanRequest, Router, Target
from modelyard.routing import features as F
from modelyard.routing.learned import LearnedRouting, threshold_for
from modelyard.routing.model import dumps, loads
from modelyard.routing.training import Example, fit

TOPICS_HARD = ("integral", "proof", "theorem", "derivative", "lemma")
TOPICS_EASY = ("capital", "colour", "animal", "greeting", "weather")


def _examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        hard = i % 2 == 0
        word = rng.choice(TOPICS_HARD if hard else TOPICS_EASY)
        text = f"question {i}: tell me about the {word} please"
        # Mostly separable, with some noise, so calibration has something to do.
        label = hard if rng.random() < 0.85 else not hard
        out.append(Example(text, F.facts(text), label))
    return out


@pytest.fixture(scope="module")
def model():
    return fit(_examples(400), {"trained_on": "synthetic"})


def test_the_model_learns_which_prompts_need_the_strong_model(model):
    hard = model.score_text("what is the derivative here", F.facts("what is the derivative here"))
    easy = model.score_text("what is the capital here", F.facts("what is the capital here"))
    assert hard > 0.6 > 0.4 > easy


def test_scores_of_a_chat_request_read_its_user_turns(model):
    req = ChatRequest(
        model="m",
        messages=[
            Message("system", (TextPart("be brief: capital"),)),
            Message("user", (TextPart("prove this theorem"),)),
        ],
    )
    assert model.score(req) == pytest.approx(
        model.score_text("prove this theorem", F.request_facts(req, "prove this theorem"))
    )


def test_the_artifact_round_trips_with_its_provenance(model):
    data = dumps(model)
    again = loads(data)
    assert again.header["trained_on"] == "synthetic"
    assert again.header["examples"] == 400
    assert len(again.version) == 12 and again.version == loads(dumps(again)).version
    text = "integral of a proof"
    assert again.score_text(text, F.facts(text)) == pytest.approx(
        model.score_text(text, F.facts(text)), abs=1e-6
    )


def test_a_file_that_is_not_an_artifact_is_refused():
    with pytest.raises(ModelyardError) as err:
        loads(b"not a zip")
    assert err.value.code == "router_artifact_invalid"


def test_training_needs_both_labels():
    same = [Example(f"t {i}", F.facts("t"), True) for i in range(20)]
    with pytest.raises(ValueError, match="needed and not"):
        fit(same, {})


def test_facts_see_tools_images_and_schema():
    row = F.facts("x", depth=3, tools=2, images=1, schema=True)
    named = dict(zip(F.FACT_NAMES, row, strict=True))
    assert named["tools"] == named["images"] == named["json_schema"] == 1.0
    assert F.facts("x")[F.FACT_NAMES.index("tools")] == 0.0


def test_a_share_of_strong_calls_becomes_a_threshold_through_the_quantiles(model):
    quantiles = model.header["score_quantiles"]
    assert len(quantiles) == 101 and quantiles == sorted(quantiles)
    assert threshold_for(model, threshold=0.3) == (0.3, "threshold")
    at, label = threshold_for(model, strong_share=0.2)
    assert at == pytest.approx(quantiles[80]) and label == "share"
    assert threshold_for(model, "cost")[0] >= threshold_for(model, "quality")[0]
    # Halfway between two quantiles, the threshold is halfway between them.
    half, _ = threshold_for(model, strong_share=0.205)
    assert half == pytest.approx((quantiles[79] + quantiles[80]) / 2)


def test_the_learned_strategy_puts_the_chosen_target_first(model):
    strong, weak = Target("up", "big"), Target("up", "small")
    routing = LearnedRouting(model, 0.5, "threshold", strong.key)
    deployment = Deployment("d", (strong, weak), strategy="learned", learned=routing)
    router = Router(HealthBoard(BreakerSettings(), 0.5), random.Random(0))
    notes: list[str] = []

    def plan(text: str, opt_out: bool = False) -> list[Target]:
        req = ChatRequest(model="d", messages=[Message("user", (TextPart(text),))])
        return router.plan(PlanRequest(deployment, request=req, opt_out=opt_out, note=notes.append))

    assert plan("prove the theorem") == [strong, weak]
    assert plan("name the capital") == [weak, strong]
    assert plan("name the capital", opt_out=True) == [strong, weak]
    assert [n.split(":")[:3] for n in notes] == [
        ["learned", "threshold", "strong"],
        ["learned", "threshold", "weak"],
        ["learned", "off"],
    ]
