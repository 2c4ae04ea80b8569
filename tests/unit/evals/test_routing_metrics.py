"""The router metrics against small cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelyard.evals import routing_metrics as M

# Four prompts: only the second needs the strong model (weak 0.5, strong 0.75 on average).
WEAK = np.array([1.0, 0.0, 0.0, 1.0])
STRONG = np.array([1.0, 1.0, 0.0, 1.0])


def test_a_router_that_ranks_the_one_gain_first():
    c = M.curve([0.1, 0.9, 0.5, 0.2], WEAK, STRONG)
    assert c.weak == 0.5 and c.strong == 0.75
    assert c.quality.tolist() == [0.5, 0.75, 0.75, 0.75, 0.75]
    assert c.pgr().tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    # Trapezoids over shares 0, .25, .5, .75, 1: .25 * (0 + 1) / 2 + .75 * 1.
    assert c.apgr() == pytest.approx(0.875)
    assert c.cpt(0.5) == 0.25 and c.cpt(0.8) == 0.25
    assert c.share_for_quality(0.95 * 0.75) == 0.25


def test_a_router_that_ranks_the_one_gain_last():
    c = M.curve([0.9, 0.1, 0.5, 0.6], WEAK, STRONG)
    assert c.pgr().tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert c.apgr() == pytest.approx(0.125)
    assert c.cpt(0.5) == 1.0


def test_equal_scores_are_the_random_router():
    c = M.curve([0.3] * 4, WEAK, STRONG)
    assert c.pgr().tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert c.apgr() == pytest.approx(0.5)
    assert c.cpt(0.5) == 0.5 and c.cpt(0.8) == 1.0


def test_a_tie_block_spreads_its_gain_evenly():
    # Items 0 and 1 tie first; the block holds the one gain, so k = 1 gets half of it.
    c = M.curve([0.5, 0.5, 0.1, 0.1], WEAK, STRONG)
    assert c.pgr().tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0])
    assert c.apgr() == pytest.approx(0.25 * 0.25 + 0.25 * 0.75 + 0.5)
    assert c.cpt(0.5) == 0.25


def test_no_gap_between_the_models_has_no_pgr():
    c = M.curve([0.1, 0.2], [1.0, 0.0], [1.0, 0.0])
    assert np.isnan(c.pgr()).all() and math.isnan(c.cpt(0.5))


def test_cost_saved_from_prices():
    # A quarter of the calls at 10, the rest at 1: 3.25 against 10.
    assert M.cost_saved(0.25, 1.0, 10.0) == pytest.approx(0.675)
    assert M.cost_saved(0.25, None, 10.0) is None


def test_summary_has_the_baselines():
    s = M.summary(np.array([0.1, 0.9, 0.5, 0.2]), WEAK, STRONG, (1.0, 10.0))
    assert s["n"] == 4 and s["apgr"] == pytest.approx(0.875)
    assert s["oracle_quality"] == 0.75 and s["oracle_share"] == 0.25
    assert s["oracle_apgr"] == pytest.approx(0.875)
    assert s["cost_saved_at_95pct_quality"] == pytest.approx(0.675)
    assert 0.3 < s["random_apgr"] < 0.7


def test_the_bootstrap_separates_a_good_router_from_chance():
    rng = np.random.default_rng(5)
    weak = (rng.random(400) < 0.6).astype(float)
    strong = np.maximum(weak, (rng.random(400) < 0.5).astype(float))
    good = (strong - weak) + rng.normal(0, 0.3, 400)
    ci = M.paired_bootstrap(good, weak, strong, resamples=200)
    assert ci.low > 0.1 and ci.resamples == 200
    noise = M.paired_bootstrap(rng.random(400), weak, strong, resamples=200)
    assert noise.low < 0 < noise.high
