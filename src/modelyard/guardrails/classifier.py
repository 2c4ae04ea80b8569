"""A small prompt-injection classifier: logistic regression over word uni- and bigrams.

No package on the index we could find ships an injection classifier whose weights install with
it and run offline on CPU without a deep-learning runtime (see ``docs/guardrails.md``), so this
one is ours: trained on ``data/injection_set.jsonl`` (written for this repository, same licence
as the project; the attack families follow the public write-ups on prompt injection), weights
shipped in ``data/injection_model.json``. Retrain with
``python -m modelyard.guardrails.classifier``; ``bench/guardrails_injection.py`` measures its
cross-validated precision and recall and its latency. Inference is a few dict lookups: well
under a millisecond for a long prompt.
"""

from __future__ import annotations

import argparse
import gzip
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Final

import orjson

_WORD: Final = re.compile(r"[a-z0-9']+|[<>\[\]|:]")
MAX_FEATURES_TEXT: Final = 20_000  # characters of a text that are read (its beginning)
# Weights smaller than this are left out of a trained model: on the shipped training data it
# changes no decision and keeps a quarter of the features (13k of 53k).
PRUNE: Final = 0.05


def features(text: str) -> set[str]:
    """Lowercased word unigrams and bigrams (markup characters count as words)."""
    words = _WORD.findall(text[:MAX_FEATURES_TEXT].lower())
    found = {f"w:{w}" for w in words}
    found.update(f"b:{a}_{b}" for a, b in pairwise(words))
    return found


@dataclass(frozen=True, slots=True)
class LinearModel:
    bias: float
    weights: Mapping[str, float]

    def score(self, text: str) -> float:
        """The probability that ``text`` is an injection."""
        weights = self.weights
        z = self.bias + sum(weights.get(f, 0.0) for f in features(text))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def train(
    examples: Sequence[tuple[str, int]], epochs: int = 60, rate: float = 0.3, l2: float = 1e-3
) -> LinearModel:
    """Logistic regression by stochastic gradient descent, in a fixed order (reproducible)."""
    rows = [(features(text), label) for text, label in examples]
    weights: dict[str, float] = {}
    bias = 0.0
    order = list(range(len(rows)))
    rng = random.Random(22)  # noqa: S311  # a reproducible order, not a secret
    for _ in range(epochs):
        rng.shuffle(order)
        for n in order:
            feats, label = rows[n]
            z = bias + sum(weights.get(f, 0.0) for f in feats)
            error = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))) - label
            bias -= rate * error
            for f in feats:
                w = weights.get(f, 0.0)
                weights[f] = w - rate * (error + l2 * w)
    return LinearModel(bias, {f: round(w, 4) for f, w in weights.items() if abs(w) >= PRUNE})


def labelled_set() -> list[tuple[str, int]]:
    """The shipped labelled set: (text, 1 for an injection, 0 for a benign request)."""
    raw = resources.files("modelyard.guardrails").joinpath("data/injection_set.jsonl")
    return [
        (row["text"], int(row["label"]))
        for line in raw.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for row in [orjson.loads(line)]
    ]


@cache
def shipped_model() -> LinearModel:
    """The weights shipped with the package (read once per process)."""
    raw = resources.files("modelyard.guardrails").joinpath("data/injection_model.json")
    data = orjson.loads(raw.read_bytes())
    return LinearModel(float(data["bias"]), dict(data["weights"]))


def dump(model: LinearModel) -> bytes:
    return orjson.dumps(
        {"bias": round(model.bias, 4), "weights": dict(sorted(model.weights.items()))},
        option=orjson.OPT_INDENT_2,
    )


def folds(
    examples: Sequence[tuple[str, int]], k: int = 5
) -> Iterable[tuple[list[tuple[str, int]], list[tuple[str, int]]]]:
    """``k`` (train, test) splits, each example tested once, in a fixed shuffled order."""
    order = list(range(len(examples)))
    random.Random(7).shuffle(order)  # noqa: S311  # reproducible folds, not a secret
    for fold in range(k):
        test = [examples[i] for n, i in enumerate(order) if n % k == fold]
        rest = [examples[i] for n, i in enumerate(order) if n % k != fold]
        yield rest, test


def public_set(path: Path) -> list[tuple[str, int]]:
    """A labelled set in the public set's form (gzipped JSON lines with ``text`` and
    ``label``; ``bench/data/injection_public.jsonl.gz``, sources in its README)."""
    with gzip.open(path, "rb") as raw:
        return [
            (row["text"], int(row["label"]))
            for line in raw
            if line.strip()
            for row in [orjson.loads(line)]
        ]


def main(argv: Sequence[str] | None = None) -> None:
    """Retrain the shipped weights on the repository's set and, given, a public one."""
    parser = argparse.ArgumentParser(description="retrain the prompt-injection classifier")
    parser.add_argument("--public", type=Path, help="also train on this public labelled set")
    args = parser.parse_args(argv)
    examples = labelled_set() + (public_set(args.public) if args.public else [])
    target = Path(__file__).parent / "data" / "injection_model.json"
    target.write_bytes(dump(train(examples)) + b"\n")
    print(f"wrote {target} ({len(examples)} examples)")


if __name__ == "__main__":
    main()
