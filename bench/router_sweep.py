"""The learned router's quality over six subject splits of MMLU, one row per learner variant.

    .venv/bin/python -m bench.router_sweep --data ../shared/routing-data [--seeds 0-5]
        [--variants words,chars,lsa-words-300,...] [--resamples 0]

For each seed, the MMLU subjects are split as ``modelyard router train --holdout 0.3 --seed S``
splits them (``evals/routing_eval.py``), each variant is fitted on the training subjects only
and scored on the held-out ones, and the APGR (``evals/routing_metrics.py``, the measure
``router evaluate`` prints) goes in a table with the mean and the worst split. The shipped
learners are :func:`modelyard.routing.training.fit` itself; the features are built once and
shared by the variants, so a sweep costs one fit per (variant, seed) instead of the six a
``router train`` runs for its calibration. Needs the ``router`` extra (scikit-learn).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "routing-data"


def split(sources: list[str], seed: int, holdout: float = 0.3) -> set[str]:
    """The held-out sources, exactly as ``routing_eval.train_from_data`` draws them."""
    shuffled = sorted(sources)
    random.Random(seed).shuffle(shuffled)  # a data split, not a secret
    return set(shuffled[: int(len(shuffled) * holdout)])


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    from bench import router_variants as V
    from modelyard.evals import routing_metrics as metrics
    from modelyard.evals.routing_data import load_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DATA), help="the routing-data folder")
    parser.add_argument("--seeds", default="0-5")
    parser.add_argument("--variants", default=",".join(V.VARIANTS))
    parser.add_argument("--resamples", type=int, default=0, help="bootstrap CI vs random")
    args = parser.parse_args(argv)
    data = load_dir(Path(args.data) / "mmlu")
    items = data.items
    weak = np.asarray([i.weak for i in items])
    strong = np.asarray([i.strong for i in items])
    texts = [i.prompt for i in items]
    cache: dict[str, Any] = {}
    names = args.variants.split(",")
    seeds = _seeds(args.seeds)
    table: dict[str, list[float]] = {}
    cis: dict[str, list[tuple[float, float]]] = {}
    for seed in seeds:  # seeds outer: a split's rows are complete early, its SVD is shared
        held = split(data.sources(), seed)
        test = np.asarray([i.source in held for i in items])
        for name in names:
            make: Callable[..., Any] = V.VARIANTS[name]
            t0 = time.perf_counter()
            scores = make(texts, weak, strong, ~test, test, seed, cache)
            apgr = metrics.curve(scores, weak[test], strong[test]).apgr()
            table.setdefault(name, []).append(apgr)
            line = f"{name:<22} seed {seed}  n {int(test.sum()):>5}  APGR {apgr:.3f}"
            if args.resamples:
                ci = metrics.paired_bootstrap(scores, weak[test], strong[test], args.resamples)
                cis.setdefault(name, []).append((ci.low, ci.high))
                line += f"  CI [{ci.low:+.3f}, {ci.high:+.3f}]"
            print(f"{line}  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    head = " | ".join(f"seed {s}" for s in seeds)
    print(f"| variant | {head} | mean | worst |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for name, row in table.items():
        cells = " | ".join(f"{a:.3f}" for a in row)
        print(f"| {name} | {cells} | {np.mean(row):.3f} | {min(row):.3f} |")
    for name, row_ci in cis.items():
        print(f"{name} CI: " + "  ".join(f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in row_ci))
    return 0


if __name__ == "__main__":
    sys.exit(main())
