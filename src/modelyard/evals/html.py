"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, no network.

The geometry is computed here; the markup is ``templates/eval_report.html`` (autoescaped
Jinja2 with every attribute quoted, see ``templating``)."""

from __future__ import annotations

from typing import Any

from modelyard.evals.recorders import CaseResult
from modelyard.evals.report import DeploymentSummary, RunReport, money
from modelyard.evals.templating import render

_BAR_W, _ROW_H, _LABEL_W = 420, 28, 160
_PLOT_W, _PLOT_H, _PAD = 520, 300, 50
_MAX_CASE_ROWS = 1000


def render_html(report: RunReport) -> str:
    cases = _cases(report.results, report.deployments)
    return render(
        "eval_report.html",
        r=report,
        summary=_summary(report),
        score=_score_chart(report.summaries, report.best or ""),
        cost=_cost_chart(report.summaries),
        cases=cases[:_MAX_CASE_ROWS],
        more_cases=len(cases) > _MAX_CASE_ROWS,
        max_cases=_MAX_CASE_ROWS,
    )


def _summary(report: RunReport) -> list[dict[str, Any]]:
    versus = {c.deployment: c for c in report.comparisons}
    rows = []
    for s in report.summaries:
        tokens = (s.input_tokens + s.output_tokens) / s.calls if s.calls else 0
        cells = [
            s.deployment,
            f"{s.score:.3f} [{s.score_low:.2f}, {s.score_high:.2f}]",
            f"{100 * s.pass_rate:.0f} % [{100 * s.pass_low:.0f}, {100 * s.pass_high:.0f}]",
            f"{s.latency_p50_s:.2f} s",
            f"{s.latency_p95_s:.2f} s",
            f"{tokens:.0f}",
            money(s.cost_per_1k_micros),
            str(s.errors),
            str(s.refusals),
        ]
        rows.append({"cells": cells, "versus": versus.get(s.deployment)})
    return rows


def _score_chart(summaries: list[DeploymentSummary], best: str) -> dict[str, Any]:
    bars = []
    for i, s in enumerate(summaries):
        y = 10 + i * _ROW_H
        bars.append(
            {
                "name": s.deployment,
                "y": y,
                "mid": y + _ROW_H / 2 - 2,
                "bar": s.score * _BAR_W,
                "lo": _LABEL_W + s.score_low * _BAR_W,
                "hi": _LABEL_W + s.score_high * _BAR_W,
                "score": s.score,
                "color": "#3a7bd5" if s.deployment == best else "#9bb7e0",
            }
        )
    return {
        "bars": bars,
        "width": _LABEL_W + _BAR_W + 60,
        "height": _ROW_H * len(summaries) + 30,
        "label_w": _LABEL_W,
        "bar_w": _BAR_W,
        "row_h": _ROW_H,
        "axis_y": 10 + len(summaries) * _ROW_H,
    }


def _cost_chart(summaries: list[DeploymentSummary]) -> dict[str, Any]:
    known = [s for s in summaries if s.cost_per_1k_micros is not None]
    top = max((s.cost_per_1k_micros or 0 for s in known), default=0) or 1
    points = [
        {
            "name": s.deployment,
            "x": _PAD + (s.cost_per_1k_micros or 0) / top * _PLOT_W,
            "y": _PAD + (1 - s.score) * _PLOT_H,
            "score": s.score,
            "money": money(s.cost_per_1k_micros),
        }
        for s in known
    ]
    return {
        "points": points,
        "missing": [s.deployment for s in summaries if s.cost_per_1k_micros is None],
        "top": money(top),
        "width": _PLOT_W + 2 * _PAD,
        "height": _PLOT_H + 2 * _PAD,
        "plot_w": _PLOT_W,
        "plot_h": _PLOT_H,
        "pad": _PAD,
    }


def _cases(
    results: list[CaseResult], deployments: list[str]
) -> list[tuple[str, list[dict[str, str] | None]]]:
    by_case: dict[str, dict[str, CaseResult]] = {}
    for r in results:
        if r.repeat == 0:
            by_case.setdefault(r.case_id, {})[r.deployment] = r
    rows = []
    for case_id, answers in by_case.items():
        cells: list[dict[str, str] | None] = []
        for d in deployments:
            got = answers.get(d)
            if got is None:
                cells.append(None)
                continue
            status = f"error: {got.error}" if got.error else f"{got.score:.2f} · {got.reason}"
            if got.refused and not got.error:
                status = f"refused · {status}"
            cells.append({"status": status, "output": got.output[:2000]})
        rows.append((case_id, cells))
    return rows
