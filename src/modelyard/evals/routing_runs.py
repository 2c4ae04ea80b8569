"""Routing data from Modelyard's own evaluation runs: two or more deployments graded on the
same dataset items.

A run's results say how well each deployment answered each case (the grader's score, averaged
over repeats; a call that failed scores 0); the dataset gives each case's prompt (its user
turns). The weaker and the stronger deployment become the router's weak and strong model, and
the run id is each item's source, so ``--holdout`` splits by run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modelyard.core.errors import InvalidRequest
from modelyard.evals.datasets import Dataset
from modelyard.evals.recorders import CaseResult
from modelyard.evals.routing_data import RoutingData, from_rows


def rows_from_results(
    source: str, dataset: Dataset, results: Iterable[CaseResult]
) -> list[tuple[str, str, dict[str, float]]]:
    """``(source, prompt, mean score by deployment)`` per case of ``dataset`` with results."""
    prompts = {
        case.id: "\n".join(m.text() for m in case.messages if m.role == "user")
        for case in dataset.cases
    }
    scores: dict[str, dict[str, list[float]]] = {}
    for r in results:
        if r.case_id in prompts:
            scores.setdefault(r.case_id, {}).setdefault(r.deployment, []).append(
                0.0 if r.error else r.score
            )
    return [
        (source, prompts[case_id], {d: sum(v) / len(v) for d, v in by_deployment.items()})
        for case_id, by_deployment in scores.items()
    ]


def from_runs(
    runs: Sequence[tuple[str, Dataset, Iterable[CaseResult]]],
    weak: str | None = None,
    strong: str | None = None,
) -> RoutingData:
    """Routing data from ``(run id, dataset, results)`` of one or more runs."""
    rows = [
        row
        for run_id, dataset, results in runs
        for row in rows_from_results(run_id, dataset, results)
    ]
    deployments = {d for _, _, q in rows for d in q}
    if len(deployments) < 2:
        raise InvalidRequest(
            "training from eval runs needs two or more deployments graded on the same cases",
            param="--runs",
        )
    return from_rows(rows, weak, strong)
