"""Statistics for evaluation reports, in pure Python (no numpy or scipy).

* ``wilson``: the Wilson score interval for a pass rate (good at small n and near 0 or 1).
* ``mean_ci``: the mean with a Student t interval (the t quantile from the Cornish-Fisher
  expansion, exact for 1 and 2 degrees of freedom, within 1 % from 3 on).
* ``bootstrap_ci``: a percentile bootstrap interval with a fixed seed (reproducible reports).
* ``percentile``: linear interpolation between closest ranks (numpy's default).
* ``mcnemar_exact``: paired pass/fail on the same cases; the two-sided exact binomial p.
* ``paired_bootstrap``: paired scores on the same cases; two-sided p of the mean difference.
* ``sign_test``: paired scores, exact binomial on the signs of the differences.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

ALPHA = 0.05
BOOTSTRAP_SEED = 20240601
BOOTSTRAP_RESAMPLES = 4000


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n``; (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - margin), min(1.0, centre + margin))


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("df must be at least 1")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def stdev(values: Sequence[float]) -> float:
    """The sample standard deviation (n - 1); 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) with a t interval; the interval is the mean itself below two values."""
    m = mean(values)
    if len(values) < 2:
        return (m, m, m)
    half = (
        t_quantile(0.5 + confidence / 2, len(values) - 1) * stdev(values) / math.sqrt(len(values))
    )
    return (m, m - half, m + half)


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """(mean, low, high) with a percentile bootstrap interval; reproducible through ``seed``."""
    m = mean(values)
    if len(values) < 2:
        return (m, m, m)
    rng = random.Random(seed)  # noqa: S311  # resampling, not cryptography
    n = len(values)
    means = sorted(math.fsum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    return (m, percentile(means, tail * 100), percentile(means, (1 - tail) * 100))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p of at most ``min(k, n-k)`` successes in ``n`` fair coin flips."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = float(sum(math.comb(n, i) for i in range(low + 1))) / 2**n
    return float(min(1.0, 2 * tail))


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact McNemar p from the discordant pairs: cases only A passed, cases only B passed."""
    return _binomial_two_sided(only_a, only_a + only_b)


def sign_test(differences: Sequence[float]) -> float:
    """Exact two-sided sign test; zero differences are dropped."""
    positive = sum(1 for d in differences if d > 0)
    negative = sum(1 for d in differences if d < 0)
    return _binomial_two_sided(positive, positive + negative)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> float:
    """Two-sided p that the mean of ``a - b`` is zero, by resampling the paired differences.

    The p is twice the share of resampled means on the far side of zero (with a +1
    correction, so it is never exactly 0).
    """
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    if not diffs or all(d == 0 for d in diffs):
        return 1.0
    rng = random.Random(seed)  # noqa: S311  # resampling, not cryptography
    n = len(diffs)
    means = [math.fsum(rng.choices(diffs, k=n)) / n for _ in range(resamples)]
    at_or_below = sum(1 for m in means if m <= 0)
    at_or_above = sum(1 for m in means if m >= 0)
    return min(1.0, 2 * (min(at_or_below, at_or_above) + 1) / (resamples + 1))


@dataclass(frozen=True, slots=True)
class PairedTest:
    """The outcome of comparing A with B on the same cases."""

    method: str
    n: int
    mean_difference: float  # mean(a) - mean(b)
    p_value: float
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def compare_paired(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> PairedTest:
    """McNemar exact when every score is 0 or 1, else a paired bootstrap of the difference."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    difference = mean(a) - mean(b)
    if all(v in (0.0, 1.0) for v in (*a, *b)):
        only_a = sum(1 for x, y in zip(a, b, strict=True) if x == 1.0 and y == 0.0)
        only_b = sum(1 for x, y in zip(a, b, strict=True) if x == 0.0 and y == 1.0)
        return PairedTest("mcnemar_exact", len(a), difference, mcnemar_exact(only_a, only_b), alpha)
    return PairedTest("paired_bootstrap", len(a), difference, paired_bootstrap(a, b), alpha)
