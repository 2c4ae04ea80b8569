"""How good a router is: quality against share of strong calls (RouteLLM, arXiv 2406.18665).

A router gives each item a score (higher: more in need of the strong model); sending the top
``k`` items to the strong model gives quality ``(sum(weak) + sum of (strong - weak) over the top
k) / n``. Items with equal scores are one block whose gain is spread evenly (what a random
tie-break gives on average), so a router that scores everything alike is exactly the random
router, whose PGR equals its share of strong calls and whose APGR is 0.5.

- PGR(share) = (quality - weak quality) / (strong quality - weak quality)
- APGR = the area under PGR over share in [0, 1] (trapezoids over every k = 0..n)
- CPT(x) = the least share of strong calls at which PGR reaches x
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Curve:
    """Quality after ``k`` strong calls, for every ``k`` in ``0..n``."""

    quality: Array  # (n + 1,)
    weak: float  # mean quality of always-weak
    strong: float  # mean quality of always-strong

    @property
    def n(self) -> int:
        return len(self.quality) - 1

    @property
    def shares(self) -> Array:
        return np.arange(self.n + 1, dtype=np.float64) / max(self.n, 1)

    def pgr(self) -> Array:
        """PGR at every ``k``; NaN when the strong model is no better than the weak one."""
        gap = self.strong - self.weak
        if gap <= 0:
            return np.full(self.n + 1, np.nan)
        return (self.quality - self.weak) / gap

    def apgr(self) -> float:
        pgr = self.pgr()
        return float(np.trapezoid(pgr, self.shares))

    def cpt(self, target: float) -> float:
        """The least share of strong calls reaching PGR ``target`` (1.0 if never; NaN, no gap)."""
        pgr = self.pgr()
        if np.isnan(pgr).all():
            return float("nan")
        hit = np.nonzero(pgr >= target - 1e-12)[0]
        return float(self.shares[hit[0]]) if len(hit) else 1.0

    def share_for_quality(self, quality: float) -> float:
        """The least share of strong calls whose quality reaches ``quality`` (1.0 if never)."""
        hit = np.nonzero(self.quality >= quality - 1e-12)[0]
        return float(self.shares[hit[0]]) if len(hit) else 1.0


def curve(
    scores: Sequence[float] | Array, weak: Sequence[float] | Array, strong: Sequence[float] | Array
) -> Curve:
    """The quality curve of a router's ``scores`` on items of known ``weak``/``strong`` quality."""
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(weak, dtype=np.float64)
    g = np.asarray(strong, dtype=np.float64) - w
    n = len(s)
    if n == 0 or len(w) != n or len(g) != n:
        raise ValueError("scores, weak and strong need the same, non-zero length")
    order = np.argsort(-s, kind="stable")
    s_sorted, gain = s[order], np.cumsum(g[order])
    # The ends of tie blocks: between them the gain grows linearly (the mean of a random tie-break).
    ends = np.nonzero(np.append(s_sorted[1:] != s_sorted[:-1], True))[0] + 1
    ks = np.concatenate(([0], ends)).astype(np.float64)
    gains = np.concatenate(([0.0], gain[ends - 1]))
    total = np.interp(np.arange(n + 1, dtype=np.float64), ks, gains)
    base = float(w.sum())
    return Curve(quality=(base + total) / n, weak=base / n, strong=(base + float(g.sum())) / n)


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    low: float
    high: float
    resamples: int


def paired_bootstrap(
    scores: Array, weak: Array, strong: Array, resamples: int = 1000, seed: int = 0
) -> Interval:
    """95 % interval of APGR(router) - APGR(random router), on the same resampled items.

    The random router draws fresh scores on each resample, so its own spread is in the
    interval too; resamples where the strong model is no better than the weak are skipped."""
    rng = np.random.default_rng(seed)
    n = len(scores)
    diffs: list[float] = []
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        mine = curve(scores[pick], weak[pick], strong[pick])
        if mine.strong <= mine.weak:
            continue
        chance = curve(rng.random(n), weak[pick], strong[pick])
        diffs.append(mine.apgr() - chance.apgr())
    if not diffs:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    d = np.asarray(diffs)
    low, high = np.percentile(d, [2.5, 97.5])
    return Interval(float(d.mean()), float(low), float(high), len(diffs))


def random_apgr(weak: Array, strong: Array, draws: int = 20, seed: int = 1) -> float:
    """The mean APGR of ``draws`` random routers (its expectation is 0.5)."""
    rng = np.random.default_rng(seed)
    return float(np.mean([curve(rng.random(len(weak)), weak, strong).apgr() for _ in range(draws)]))


def cost_saved(share: float, weak_price: float | None, strong_price: float | None) -> float | None:
    """The fraction of always-strong's cost saved by sending ``share`` of the calls to the strong
    model and the rest to the weak one (same tokens per call assumed); None without prices."""
    if weak_price is None or strong_price is None or strong_price <= 0:
        return None
    return 1.0 - (share * strong_price + (1.0 - share) * weak_price) / strong_price


def summary(
    scores: Array, weak: Array, strong: Array, prices: tuple[float | None, float | None]
) -> dict[str, Any]:
    """The figures of one evaluation (no bootstrap): the router and the baselines."""
    mine = curve(scores, weak, strong)
    oracle = curve(strong - weak, weak, strong)
    share95 = mine.share_for_quality(0.95 * mine.strong)
    return {
        "n": mine.n,
        "apgr": mine.apgr(),
        "cpt50": mine.cpt(0.5),
        "cpt80": mine.cpt(0.8),
        "share_at_95pct_quality": share95,
        "cost_saved_at_95pct_quality": cost_saved(share95, *prices),
        "weak_quality": mine.weak,
        "strong_quality": mine.strong,
        "oracle_quality": float(np.maximum(weak, strong).mean()),
        "oracle_share": float((strong > weak).mean()),
        "oracle_apgr": oracle.apgr(),
        "random_apgr": random_apgr(weak, strong),
    }
