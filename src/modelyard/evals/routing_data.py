"""Routing data: per-prompt quality of a weak and a strong model, read from files.

Two formats (``../shared/routing-data/README.md``): CSV files with a ``prompt`` column then one
boolean column per model (other columns, such as responses, are ignored), and MT-Bench's
``judgements.jsonl`` + ``question.jsonl`` (GPT-4 scores 1-10, read as quality score/10). Prompts
listed in a folder's ``contaminated_prompts.jsonl`` are left out.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from modelyard.core.errors import InvalidRequest

_BOOLS: Final[Mapping[str, float]] = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}


@dataclass(frozen=True, slots=True)
class Item:
    prompt: str
    source: str  # the file (stem) the item came from, e.g. mmlu_anatomy
    weak: float  # quality of the weak model's answer in [0, 1]
    strong: float


@dataclass(frozen=True, slots=True)
class RoutingData:
    weak_model: str
    strong_model: str
    items: list[Item]

    def sources(self) -> list[str]:
        return sorted({i.source for i in self.items})


def load_dir(folder: Path, weak: str | None = None, strong: str | None = None) -> RoutingData:
    """Every CSV (and an MT-Bench judgements file) under ``folder``, recursively.

    ``weak``/``strong`` name the model columns; by default the two models are told apart by
    their mean quality on the data (the stronger is the better one)."""
    if not folder.is_dir():
        raise InvalidRequest(f"routing data folder {folder} does not exist", param="--data")
    contaminated = _contaminated(folder)
    rows: list[tuple[str, str, dict[str, float]]] = []
    for path in sorted(folder.rglob("*.csv")):
        rows.extend((path.stem, p, q) for p, q in _csv_rows(path))
    for path in sorted(folder.rglob("judgements.jsonl")):
        rows.extend(("mt_bench", p, q) for p, q in _mt_bench_rows(path))
    rows = [r for r in rows if r[1].strip() not in contaminated]
    if not rows:
        raise InvalidRequest(
            f"no routing data (CSV or judgements.jsonl) in {folder}", param="--data"
        )
    return from_rows(rows, weak, strong)


def from_rows(
    rows: Sequence[tuple[str, str, dict[str, float]]],
    weak: str | None = None,
    strong: str | None = None,
) -> RoutingData:
    """Routing data from ``(source, prompt, quality by model)`` rows; the weak and strong model
    named, or told apart by mean quality. Rows without both models' quality are left out."""
    weak, strong = _pick_models(rows, weak, strong)
    items = [
        Item(prompt, source, q[weak], q[strong])
        for source, prompt, q in rows
        if weak in q and strong in q
    ]
    return RoutingData(weak, strong, items)


def _csv_rows(path: Path) -> Iterable[tuple[str, dict[str, float]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "prompt" not in reader.fieldnames:
            raise InvalidRequest(f"{path}: the first row must name a 'prompt' column")
        for row in reader:
            quality = {
                name: _BOOLS[value.strip().lower()]
                for name, value in row.items()
                if name != "prompt" and value is not None and value.strip().lower() in _BOOLS
            }
            yield row["prompt"] or "", quality


def _mt_bench_rows(path: Path) -> Iterable[tuple[str, dict[str, float]]]:
    questions: dict[int, list[str]] = {}
    qpath = path.with_name("question.jsonl")
    for line in qpath.read_text(encoding="utf-8").splitlines() if qpath.exists() else ():
        q = json.loads(line)
        turns = q["turns"]
        # The file keeps each question's turns as a Python list literal in a string.
        questions[int(q["question_id"])] = (
            list(ast.literal_eval(turns)) if isinstance(turns, str) else list(turns)
        )
    scores: dict[tuple[int, int], dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        j = json.loads(line)
        if j.get("score", -1) < 0:
            continue
        key = (int(j["question_id"]), int(j["turn"]))
        scores.setdefault(key, {})[j["model"]] = float(j["score"]) / 10.0
    for (qid, turn), quality in sorted(scores.items()):
        turns = questions.get(qid)
        if turns and len(turns) >= turn:
            yield "\n".join(turns[:turn]), quality


def _contaminated(folder: Path) -> frozenset[str]:
    prompts: set[str] = set()
    for path in folder.rglob("contaminated_prompts.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            prompts.update(str(row[k]).strip() for k in ("train_prompt", "eval_prompt") if k in row)
    return frozenset(prompts)


def _pick_models(
    rows: Sequence[tuple[str, str, dict[str, float]]], weak: str | None, strong: str | None
) -> tuple[str, str]:
    totals: dict[str, list[float]] = {}
    for _, _, quality in rows:
        for name, value in quality.items():
            totals.setdefault(name, []).append(value)
    means = {name: sum(v) / len(v) for name, v in totals.items()}
    for given, flag in ((weak, "--weak"), (strong, "--strong")):
        if given is not None and given not in means:
            raise InvalidRequest(
                f"no model column {given!r}; the data has {sorted(means)}", param=flag
            )
    if weak is None or strong is None:
        ranked = sorted(means, key=lambda n: means[n])
        if len(ranked) < 2:
            raise InvalidRequest("routing data needs quality columns for two models")
        weak = weak or next(n for n in ranked if n != strong)
        strong = strong or next(n for n in reversed(ranked) if n != weak)
    return weak, strong
