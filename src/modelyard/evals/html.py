"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, no network."""

from __future__ import annotations

from html import escape

from modelyard.evals.recorders import CaseResult
from modelyard.evals.report import DeploymentSummary, RunReport, money

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d232a}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #dde;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.rec{background:#eef7ee;border-left:4px solid #3a8a3a;padding:.6rem 1rem}
.sig{color:#b03030;font-weight:600}.muted{color:#667}
pre{white-space:pre-wrap;margin:0;max-height:8em;overflow:auto;font-size:12px}
svg text{font:12px system-ui,sans-serif}
"""
_BAR_W, _ROW_H, _LABEL_W = 420, 28, 160
_PLOT_W, _PLOT_H, _PAD = 520, 300, 50
_MAX_CASE_ROWS = 1000


def render_html(report: RunReport) -> str:
    best = report.best or ""
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Modelyard eval {escape(report.run_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Evaluation {escape(report.run_id)}</h1>",
        f"<p class=muted>dataset <b>{escape(report.dataset)}</b> · {report.cases} cases × "
        f"{report.repeat} repeat(s) · {escape(report.created_at)}</p>",
        f"<p class=rec>{escape(report.recommendation)}</p>",
        "<h2>Summary</h2>",
        _summary_table(report),
        "<h2>Score with 95 % confidence interval</h2>",
        _score_chart(report.summaries, best),
        "<h2>Cost per 1,000 cases vs score</h2>",
        _cost_chart(report.summaries),
        "<h2>Cases</h2>",
        _cases_table(report.results, report.deployments),
        "</body></html>",
    ]
    return "\n".join(parts)


def _summary_table(report: RunReport) -> str:
    versus = {c.deployment: c for c in report.comparisons}
    rows = []
    for s in report.summaries:
        c = versus.get(s.deployment)
        if c is None:
            vs = "best"
        else:
            cls = " class=sig" if c.significant else ""
            vs = f"<span{cls}>Δ {c.difference:+.3f}, p={c.p_value:.3g} ({escape(c.method)})</span>"
        tokens = (s.input_tokens + s.output_tokens) / s.calls if s.calls else 0
        cells = [
            escape(s.deployment),
            f"{s.score:.3f} [{s.score_low:.2f}, {s.score_high:.2f}]",
            f"{100 * s.pass_rate:.0f} % [{100 * s.pass_low:.0f}, {100 * s.pass_high:.0f}]",
            f"{s.latency_p50_s:.2f} s",
            f"{s.latency_p95_s:.2f} s",
            f"{tokens:.0f}",
            escape(money(s.cost_per_1k_micros)),
            str(s.errors),
            vs,
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = ["deployment", "score [95 % CI]", "pass rate", "p50", "p95", "tokens/call"]
    head += ["cost / 1k cases", "errors", f"vs {escape(report.best or '')}"]
    return (
        "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


def _score_chart(summaries: list[DeploymentSummary], best: str) -> str:
    height = _ROW_H * len(summaries) + 30
    width = _LABEL_W + _BAR_W + 60
    out = [f'<svg role=img aria-label="scores" width={width} height={height}>']
    for i, s in enumerate(summaries):
        y = 10 + i * _ROW_H
        bar = s.score * _BAR_W
        color = "#3a7bd5" if s.deployment == best else "#9bb7e0"
        lo, hi = _LABEL_W + s.score_low * _BAR_W, _LABEL_W + s.score_high * _BAR_W
        mid = y + _ROW_H / 2 - 2
        out += [
            f"<text x={_LABEL_W - 8} y={mid + 4} text-anchor=end>{escape(s.deployment)}</text>",
            f'<rect x={_LABEL_W} y={y} width="{bar:.1f}" height={_ROW_H - 8} fill="{color}"/>',
            f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{mid:.1f}" y2="{mid:.1f}" stroke=#222/>',
            *(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mid - 5:.1f}" y2="{mid + 5:.1f}" '
                "stroke=#222/>"
                for x in (lo, hi)
            ),
            f'<text x="{_LABEL_W + _BAR_W + 8}" y={mid + 4}>{s.score:.3f}</text>',
        ]
    axis_y = 10 + len(summaries) * _ROW_H
    out.append(
        f"<line x1={_LABEL_W} x2={_LABEL_W + _BAR_W} y1={axis_y} y2={axis_y} stroke=#999/>"
        f"<text x={_LABEL_W} y={axis_y + 14}>0</text>"
        f"<text x={_LABEL_W + _BAR_W} y={axis_y + 14} text-anchor=end>1</text></svg>"
    )
    return "".join(out)


def _cost_chart(summaries: list[DeploymentSummary]) -> str:
    known = [s for s in summaries if s.cost_per_1k_micros is not None]
    if not known:
        return "<p class=muted>Costs are unknown for every deployment.</p>"
    top = max(s.cost_per_1k_micros or 0 for s in known) or 1
    w, h = _PLOT_W + 2 * _PAD, _PLOT_H + 2 * _PAD
    out = [f'<svg role=img aria-label="cost vs score" width={w} height={h}>']
    out.append(
        f"<rect x={_PAD} y={_PAD} width={_PLOT_W} height={_PLOT_H} fill=none stroke=#bbb/>"
        f"<text x={_PAD + _PLOT_W / 2} y={h - 12} text-anchor=middle>"
        "cost per 1,000 cases →</text>"
        f'<text x=14 y={_PAD + _PLOT_H / 2} transform="rotate(-90 14 {_PAD + _PLOT_H / 2})" '
        "text-anchor=middle>score →</text>"
        f"<text x={_PAD} y={_PAD + _PLOT_H + 16}>$0</text>"
        f"<text x={_PAD + _PLOT_W} y={_PAD + _PLOT_H + 16} text-anchor=end>"
        f"{escape(money(top))}</text>"
    )
    for s in known:
        x = _PAD + (s.cost_per_1k_micros or 0) / top * _PLOT_W
        y = _PAD + (1 - s.score) * _PLOT_H
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r=6 fill=#3a7bd5><title>'
            f"{escape(s.deployment)}: {s.score:.3f}, {escape(money(s.cost_per_1k_micros))}"
            f'</title></circle><text x="{x + 9:.1f}" y="{y + 4:.1f}">{escape(s.deployment)}</text>'
        )
    out.append("</svg>")
    missing = [s.deployment for s in summaries if s.cost_per_1k_micros is None]
    if missing:
        out.append(f"<p class=muted>Cost unknown: {escape(', '.join(missing))}</p>")
    return "".join(out)


def _cases_table(results: list[CaseResult], deployments: list[str]) -> str:
    by_case: dict[str, dict[str, CaseResult]] = {}
    for r in results:
        if r.repeat == 0:
            by_case.setdefault(r.case_id, {})[r.deployment] = r
    head = "".join(f"<th>{escape(d)}</th>" for d in deployments)
    rows = []
    for case_id, answers in list(by_case.items())[:_MAX_CASE_ROWS]:
        cells = []
        for d in deployments:
            got = answers.get(d)
            if got is None:
                cells.append("<td class=muted>–</td>")
                continue
            status = f"error: {got.error}" if got.error else f"{got.score:.2f} · {got.reason}"
            cells.append(f"<td><b>{escape(status)}</b><pre>{escape(got.output[:2000])}</pre></td>")
        rows.append(f"<tr><td>{escape(case_id)}</td>{''.join(cells)}</tr>")
    note = "" if len(by_case) <= _MAX_CASE_ROWS else f"<p class=muted>first {_MAX_CASE_ROWS}</p>"
    return f"<table><tr><th>case</th>{head}</tr>{''.join(rows)}</table>{note}"
