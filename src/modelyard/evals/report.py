"""A run's report: per-deployment summaries, significance against the best, a recommendation.

Scores are averaged per case first (over repeats), so a case asked five times weighs as much as
one asked once; errors score 0. Paired tests compare deployments on the cases both answered.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.core.money import micros_to_dollars
from modelyard.evals.datasets import Dataset
from modelyard.evals.recorders import CaseResult
from modelyard.evals.stats import ALPHA, compare_paired, mean, mean_ci, percentile, wilson


@dataclass(frozen=True, slots=True)
class DeploymentSummary:
    deployment: str
    calls: int
    cases: int
    score: float
    score_low: float
    score_high: float
    pass_rate: float
    pass_low: float
    pass_high: float
    latency_p50_s: float
    latency_p95_s: float
    input_tokens: int
    output_tokens: int
    cost_micros: int | None
    cost_per_1k_micros: int | None
    errors: int
    # Calls the model declined (graded by each case's ``on_refusal``); 0 in older reports.
    refusals: int = 0


@dataclass(frozen=True, slots=True)
class Comparison:
    """``baseline`` (the best) against ``deployment`` on the cases both answered."""

    baseline: str
    deployment: str
    method: str
    n: int
    difference: float  # baseline score - deployment score
    p_value: float
    significant: bool


@dataclass(slots=True)
class RunReport:
    run_id: str
    dataset: str
    deployments: list[str]
    repeat: int
    cases: int
    summaries: list[DeploymentSummary]
    comparisons: list[Comparison]
    best: str | None
    recommendation: str
    results: list[CaseResult] = field(default_factory=list)
    created_at: str = ""
    alpha: float = ALPHA
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self, deployment: str) -> DeploymentSummary:
        return next(s for s in self.summaries if s.deployment == deployment)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``from_dict`` reads it back)."""
        out = asdict(self)
        out["results"] = [r.to_dict() for r in self.results]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunReport:
        data = dict(raw)
        data["summaries"] = [DeploymentSummary(**s) for s in raw.get("summaries", [])]
        data["comparisons"] = [Comparison(**c) for c in raw.get("comparisons", [])]
        data["results"] = [CaseResult.from_dict(r) for r in raw.get("results", [])]
        return cls(**data)


def per_case_scores(results: Sequence[CaseResult]) -> dict[str, float]:
    """Mean score of every case over its repeats (an error scores 0)."""
    scores: dict[str, list[float]] = defaultdict(list)
    for r in results:
        scores[r.case_id].append(0.0 if r.error else r.score)
    return {case: mean(values) for case, values in scores.items()}


def summarise(deployment: str, results: Sequence[CaseResult]) -> DeploymentSummary:
    cases = per_case_scores(results)
    score, low, high = mean_ci(list(cases.values()))
    passed = sum(1 for r in results if r.passed and not r.error)
    pass_low, pass_high = wilson(passed, len(results))
    latencies = [r.latency_s for r in results if not r.error]
    costs = [r.cost_micros for r in results if r.cost_micros is not None]
    total_cost = sum(costs) if costs else None
    per_1k = round(total_cost * 1000 / len(costs)) if total_cost is not None else None
    return DeploymentSummary(
        deployment=deployment,
        calls=len(results),
        cases=len(cases),
        score=score,
        score_low=max(0.0, low),
        score_high=min(1.0, high),
        pass_rate=passed / len(results) if results else 0.0,
        pass_low=pass_low,
        pass_high=pass_high,
        latency_p50_s=percentile(latencies, 50),
        latency_p95_s=percentile(latencies, 95),
        input_tokens=sum(r.input_tokens for r in results),
        output_tokens=sum(r.output_tokens for r in results),
        cost_micros=total_cost,
        cost_per_1k_micros=per_1k,
        errors=sum(1 for r in results if r.error),
        refusals=sum(1 for r in results if r.refused and not r.error),
    )


def _rank_key(s: DeploymentSummary) -> tuple[float, float, float, str]:
    cost = s.cost_per_1k_micros if s.cost_per_1k_micros is not None else float("inf")
    return (-s.score, -s.pass_rate, cost, s.deployment)


def compare(baseline: str, other: str, by: dict[str, dict[str, float]], alpha: float) -> Comparison:
    shared = sorted(set(by[baseline]) & set(by[other]))
    a = [by[baseline][c] for c in shared]
    b = [by[other][c] for c in shared]
    test = compare_paired(a, b, alpha)
    return Comparison(
        baseline, other, test.method, test.n, test.mean_difference, test.p_value, test.significant
    )


def build_report(
    run_id: str,
    dataset: Dataset | str,
    deployments: Sequence[str],
    results: Sequence[CaseResult],
    *,
    repeat: int = 1,
    alpha: float = ALPHA,
) -> RunReport:
    """Aggregate ``results`` into a report (deployments without results are left out)."""
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        grouped[r.deployment].append(r)
    present = [d for d in deployments if grouped.get(d)]
    summaries = [summarise(d, grouped[d]) for d in present]
    ranked = sorted(summaries, key=_rank_key)
    best = ranked[0].deployment if ranked else None
    by_case = {d: per_case_scores(grouped[d]) for d in present}
    comparisons = [compare(best, s.deployment, by_case, alpha) for s in ranked[1:]] if best else []
    name = dataset.name if isinstance(dataset, Dataset) else dataset
    report = RunReport(
        run_id=run_id,
        dataset=name,
        deployments=list(present),
        repeat=repeat,
        cases=len({r.case_id for r in results}),
        summaries=summaries,
        comparisons=comparisons,
        best=best,
        recommendation="",
        results=list(results),
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        alpha=alpha,
    )
    report.recommendation = recommend(report)
    return report


def recommend(report: RunReport) -> str:
    """The cheapest deployment whose score is not significantly below the best's."""
    if report.best is None:
        return "No results yet."
    best = report.summary(report.best)
    score = f"{best.score:.2f}"
    if not report.comparisons:
        return f"Only {best.deployment} was evaluated: score {score}."
    within = [best] + [
        report.summary(c.deployment) for c in report.comparisons if not c.significant
    ]
    if len(within) == 1:
        return (
            f"Deployment {best.deployment} scores best ({score}); every other deployment scores "
            f"significantly lower (p < {report.alpha:g})."
        )
    others = ", ".join(s.deployment for s in within[1:])
    unknown = [s.deployment for s in within if s.cost_per_1k_micros is None]
    if unknown:
        return (
            f"Deployment {best.deployment} scores best ({score}); {others} score within the "
            f"margin. Costs are unknown for {', '.join(unknown)}, so no cost comparison."
        )
    cheapest = min(within, key=lambda s: (s.cost_per_1k_micros, s is not best))
    best_cost = best.cost_per_1k_micros or 0
    cheap_cost = cheapest.cost_per_1k_micros or 0
    if cheapest is best or cheap_cost >= best_cost:
        return (
            f"Deployment {best.deployment} scores best ({score}) and costs no more than "
            f"{others}, which score within the margin: keep {best.deployment}."
        )
    saving = round(100 * (best_cost - cheap_cost) / best_cost)
    return (
        f"Deployment {cheapest.deployment} scores within the margin of {best.deployment} "
        f"({cheapest.score:.2f} vs {score}) at {saving} % lower cost."
    )


def money(micros: int | None) -> str:
    if micros is None:
        return "n/a"
    dollars = micros_to_dollars(micros)
    return f"${dollars:.4f}" if dollars < 1 else f"${dollars:,.2f}"


def render_table(report: RunReport) -> str:
    """A plain-text side-by-side table for the terminal."""
    head = ["deployment", "score (95% CI)", "pass", "p50", "p95", "tokens/call", "$/1k cases"]
    head += ["errors", "refused", f"vs {report.best}"]
    versus = {c.deployment: c for c in report.comparisons}
    rows = [head]
    for s in sorted(report.summaries, key=_rank_key):
        c = versus.get(s.deployment)
        vs = "best" if c is None else f"p={c.p_value:.3g}{' *' if c.significant else ''}"
        tokens = (s.input_tokens + s.output_tokens) / s.calls if s.calls else 0
        rows.append(
            [
                s.deployment,
                f"{s.score:.3f} [{s.score_low:.2f}, {s.score_high:.2f}]",
                f"{100 * s.pass_rate:.0f}%",
                f"{s.latency_p50_s:.2f}s",
                f"{s.latency_p95_s:.2f}s",
                f"{tokens:.0f}",
                money(s.cost_per_1k_micros),
                str(s.errors),
                str(s.refusals),
                vs,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    title = (
        f"run {report.run_id} · dataset {report.dataset} · {report.cases} cases × {report.repeat}"
    )
    notes = []
    if report.comparisons:  # nothing to compare when one deployment ran
        notes.append(f"* significantly different from {report.best} at p < {report.alpha:g}")
    for c in report.comparisons:
        verdict = "significant" if c.significant else "not significant"
        notes.append(
            f"  {c.baseline} vs {c.deployment}: Δscore {c.difference:+.3f} over {c.n} cases, "
            f"{c.method} p={c.p_value:.3g} ({verdict})"
        )
    return "\n".join([title, "", *lines, "", *notes, "", report.recommendation])
