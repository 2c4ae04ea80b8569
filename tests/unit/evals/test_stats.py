import math

import pytest

from modelyard.evals import stats


def test_wilson_interval_for_8_of_10_matches_hand_computation():
    low, high = stats.wilson(8, 10)
    # z = 1.959964: centre (0.8 + z²/20)/(1 + z²/10), margin z·sqrt(0.016 + z²/400)/(1 + z²/10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_edges():
    assert stats.wilson(0, 0) == (0.0, 1.0)
    low, high = stats.wilson(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)


def test_mcnemar_exact_known_table():
    # 1 case only A passed, 8 only B passed: p = 2·(C(9,0)+C(9,1))/2^9 = 20/512
    assert stats.mcnemar_exact(1, 8) == pytest.approx(20 / 512)
    assert stats.mcnemar_exact(8, 1) == pytest.approx(0.0390625)
    assert stats.mcnemar_exact(3, 3) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_t_quantile_against_tables():
    assert stats.t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert stats.t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert stats.t_quantile(0.975, 3) == pytest.approx(3.182, rel=0.01)
    assert stats.t_quantile(0.975, 9) == pytest.approx(2.262, abs=2e-3)
    assert stats.t_quantile(0.975, 29) == pytest.approx(2.045, abs=1e-3)


def test_mean_ci_hand_computed():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    m, low, high = stats.mean_ci(values)
    # sd = sqrt(2.5); half = 2.776 · sqrt(2.5)/sqrt(5)
    half = 2.776 * math.sqrt(2.5) / math.sqrt(5)
    assert m == 3.0
    assert low == pytest.approx(3 - half, abs=0.01)
    assert high == pytest.approx(3 + half, abs=0.01)
    assert stats.mean_ci([0.7]) == (0.7, 0.7, 0.7)


def test_percentile_linear_interpolation():
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5
    assert stats.percentile([10, 20, 30, 40, 50], 95) == pytest.approx(48.0)
    assert stats.percentile([], 50) == 0.0


def test_bootstrap_is_reproducible_and_brackets_the_mean():
    values = [0.1, 0.4, 0.5, 0.9, 0.7, 0.3, 0.8]
    first = stats.bootstrap_ci(values)
    assert first == stats.bootstrap_ci(values)
    assert first[1] < first[0] < first[2]


def test_sign_test():
    assert stats.sign_test([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) == pytest.approx(2 / 1024)
    assert stats.sign_test([1, -1, 0]) == 1.0


def test_paired_bootstrap_separates_clear_and_null_differences():
    a = [0.9, 0.8, 0.95, 0.85, 0.9, 0.7, 0.88, 0.92, 0.81, 0.9] * 3
    b = [x - 0.3 + (0.05 if i % 2 else -0.05) for i, x in enumerate(a)]
    assert stats.paired_bootstrap(a, b) < 0.01
    noise = [0.02 if i % 2 else -0.02 for i in range(30)]
    assert stats.paired_bootstrap(a, [x + d for x, d in zip(a, noise, strict=True)]) > 0.3


def test_compare_paired_picks_the_method():
    binary = stats.compare_paired([1] * 8 + [0, 1], [0] * 8 + [1, 1])
    assert binary.method == "mcnemar_exact"
    assert binary.p_value == pytest.approx(20 / 512)
    assert binary.significant
    graded = stats.compare_paired([0.5, 0.6], [0.5, 0.6])
    assert graded.method == "paired_bootstrap" and not graded.significant
