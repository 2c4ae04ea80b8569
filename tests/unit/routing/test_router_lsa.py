"""The learned router's LSA learner: the TF-IDF projected by an SVD, folded back into buckets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from modelyard.routing import features as F
from modelyard.routing.model import RouterModel, dumps, loads
from modelyard.routing.training import Example, _lsa, fit


def _with_facts(text: list[list[float]]) -> sparse.csr_matrix:
    facts = np.full((len(text), F.FACTS), 0.5)
    return sparse.csr_matrix(np.hstack([np.asarray(text), facts]))


def test_the_projection_keeps_the_dominant_direction_and_the_facts():
    # Two text columns, the first carries the larger variance: the top singular vector is
    # +-e1, so the projected column is +-(3, 0, 3, 0). The third column is in one prompt only:
    # left out of the SVD, so its unfolded weight is 0.
    x = _with_facts([[3.0, 0.0, 0.0], [0.0, 1.0, 5.0], [3.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    projected, unfold = _lsa(x, 300, seed=0)  # asks for more dimensions than exist
    assert projected.shape == (4, 1 + F.FACTS)
    assert np.abs(projected[:, 0]) == pytest.approx([3.0, 0.0, 3.0, 0.0])
    assert projected[:, 1:] == pytest.approx(np.full((4, F.FACTS), 0.5))
    weights = unfold(np.ones(1 + F.FACTS))
    assert weights.shape == (3 + F.FACTS,)
    assert np.abs(weights[:3]) == pytest.approx([1.0, 0.0, 0.0])
    assert weights[3:] == pytest.approx(np.ones(F.FACTS))


def test_too_few_shared_buckets_for_an_svd_are_refused():
    with pytest.raises(ValueError, match="shared by two or more"):
        _lsa(_with_facts([[1.0, 0.0], [0.0, 1.0]]), 10, seed=0)


def test_weights_over_the_projection_unfold_to_the_same_scores_over_the_buckets():
    rng = np.random.default_rng(1)
    text = rng.random((40, 30)) * (rng.random((40, 30)) < 0.3)
    x = _with_facts(text.tolist())
    projected, unfold = _lsa(x, 5, seed=0)
    w = rng.normal(size=5 + F.FACTS)
    assert np.asarray(x @ unfold(w)) == pytest.approx(projected @ w)


def _examples() -> list[Example]:
    out = []
    for i in range(200):
        hard = i % 2 == 0
        text = f"item {i}: " + ("compute the eigenvalues" if hard else "name the colour")
        out.append(Example(text, F.facts(text), hard))
    return out


@pytest.mark.parametrize("kind", ["words", "chars"])
def test_an_lsa_router_scores_in_the_same_artifact_and_is_deterministic(kind):
    model = fit(_examples(), {"trained_on": "synthetic"}, text_features=kind, lsa_dims=20)
    again = fit(_examples(), {"trained_on": "synthetic"}, text_features=kind, lsa_dims=20)
    assert dumps(model) == dumps(again)
    served = loads(dumps(model))
    assert served.header["lsa_dims"] == 20
    assert served.coef.shape == (F.DIM,)
    hard, easy = "compute the eigenvalues of this", "name the colour of this"
    assert served.score_text(hard, F.facts(hard)) > 0.5 > served.score_text(easy, F.facts(easy))


def test_negative_lsa_dimensions_are_refused():
    with pytest.raises(ValueError, match="LSA dimensions"):
        fit(_examples(), {}, lsa_dims=-1)


def _mixed() -> list[Example]:
    """Hard prompts: the strong model won; easy ones: the weak model won; 'tie' ones: neither."""
    out = []
    for i in range(300):
        kind = ("hard", "easy", "tie")[i % 3]
        text = (
            f"item {i}: " + {"hard": "prove the theorem", "easy": "say hello", "tie": "x y"}[kind]
        )
        out.append(Example(text, F.facts(text), kind == "hard", decided=kind != "tie"))
    return out


def test_the_pairwise_label_learns_from_decided_prompts_and_scores_every_prompt():
    model = fit(_mixed(), {}, label="pairwise")
    assert model.header["label"] == "pairwise"
    hard, easy = "prove the theorem now", "say hello now"
    assert model.score_text(hard, F.facts(hard)) > 0.5 > model.score_text(easy, F.facts(easy))
    # The quantiles cover every prompt, ties included (a third of them, scored in between).
    quantiles = model.header["score_quantiles"]
    assert len(quantiles) == 101 and quantiles == sorted(quantiles)
    assert fit(_mixed(), {}, label="pairwise").coef.tolist() == model.coef.tolist()


def test_pairwise_falls_back_to_needed_when_the_weak_model_never_won():
    never = [Example(e.text, e.facts, e.strong_needed, decided=e.strong_needed) for e in _mixed()]
    model = fit(never, {}, label="pairwise")
    assert model.header["label"] == "needed"
    with pytest.raises(ValueError, match="label"):
        fit(_mixed(), {}, label="other")


def test_a_gain_router_scores_p_strong_better_minus_p_weak_better_and_round_trips():
    model = fit(_mixed(), {}, label="gain")
    assert model.header["label"] == "gain" and model.coef_down is not None
    served = loads(dumps(model))
    assert served.header["format"] == "modelyard.router/3"
    assert served.coef_down is not None and served.coef_down.shape == (F.DIM,)
    hard, easy, tie = "prove the theorem now", "say hello now", "x y now"
    scores = [served.score_text(t, F.facts(t)) for t in (hard, easy, tie)]
    assert scores[0] > 0.3 and scores[1] < -0.3  # a difference of probabilities: in [-1, 1]
    assert abs(scores[2]) < scores[0] and all(-1 <= v <= 1 for v in scores)
    # By hand: the two calibrated logistic models, subtracted.
    up = RouterModel(served.idf, served.coef, served.intercept)
    down = RouterModel(served.idf, served.coef_down, served.intercept_down)
    by_hand = up.score_text(hard, F.facts(hard)) - down.score_text(hard, F.facts(hard))
    assert scores[0] == pytest.approx(by_hand, abs=1e-6)
    assert dumps(fit(_mixed(), {}, label="gain")) == dumps(model)


def test_gain_falls_back_to_needed_when_the_weak_model_never_won():
    never = [Example(e.text, e.facts, e.strong_needed, decided=e.strong_needed) for e in _mixed()]
    model = fit(never, {}, label="gain")
    assert model.header["label"] == "needed" and model.coef_down is None
