"""A router evaluation as one self-contained HTML page (inline CSS and SVG, like eval reports)."""

from __future__ import annotations

from html import escape
from typing import Any

from modelyard.evals.html import _CSS
from modelyard.evals.routing_eval import Evaluation

_W, _H, _PAD = 560, 340, 56


def render_html(ev: Evaluation) -> str:
    f = ev.figures
    verdict = (
        f"beats random: APGR − random's APGR is {ev.ci.mean:+.3f}, 95 % CI "
        f"[{ev.ci.low:+.3f}, {ev.ci.high:+.3f}] over {ev.ci.resamples} paired resamples"
        if ev.ci.low > 0
        else f"does NOT beat random here: 95 % CI of APGR − random's APGR is "
        f"[{ev.ci.low:+.3f}, {ev.ci.high:+.3f}]"
    )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Modelyard router evaluation</title><style>{_CSS}</style></head><body>",
        "<h1>Router evaluation</h1>",
        f"<p class=muted>router <b>{escape(ev.router)}</b> · data <b>{escape(ev.data)}</b> · "
        f"{f['n']} prompts · weak {escape(ev.weak_model)} · strong {escape(ev.strong_model)}</p>",
        f"<p class=rec>APGR {f['apgr']:.3f}; {escape(verdict)}.</p>",
        "<h2>Figures</h2>",
        _table(ev),
        "<h2>Quality against share of strong calls</h2>",
        _chart(ev),
        "</body></html>",
    ]
    return "\n".join(parts)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f} %"


def _table(ev: Evaluation) -> str:
    f = ev.figures
    rows = [
        ("APGR (random ≈ 0.5)", f"{f['apgr']:.3f}"),
        ("random router's APGR (mean of 20 draws)", f"{f['random_apgr']:.3f}"),
        ("oracle's APGR", f"{f['oracle_apgr']:.3f}"),
        ("CPT(50 %): strong calls for half the gain", _pct(f["cpt50"])),
        ("CPT(80 %)", _pct(f["cpt80"])),
        ("strong calls for 95 % of the strong model's quality", _pct(f["share_at_95pct_quality"])),
        ("cost saved there (catalog prices)", _pct(f["cost_saved_at_95pct_quality"])),
        ("always-weak quality", _pct(f["weak_quality"])),
        ("always-strong quality", _pct(f["strong_quality"])),
        (
            "oracle quality (at its share of strong calls)",
            f"{_pct(f['oracle_quality'])} ({_pct(f['oracle_share'])})",
        ),
    ]
    body = "".join(f"<tr><td>{escape(k)}</td><td class=num>{escape(v)}</td></tr>" for k, v in rows)
    excluded = ", ".join(ev.excluded_sources) or "none"
    return (
        f"<table><tr><th>measure</th><th>value</th></tr>{body}</table>"
        f"<p class=muted>sources left out (the router was trained on them): {escape(excluded)}</p>"
    )


def _xy(share: float, quality: float, lo: float, hi: float) -> tuple[float, float]:
    span = (hi - lo) or 1.0
    return _PAD + share * _W, _PAD + (1 - (quality - lo) / span) * _H


def _chart(ev: Evaluation) -> str:
    f, c = ev.figures, ev.curve
    lo = min(f["weak_quality"], float(c.quality.min())) - 0.02
    hi = max(f["oracle_quality"], float(c.quality.max())) + 0.02
    step = max(1, c.n // 400)
    points = " ".join(
        "{:.1f},{:.1f}".format(*_xy(float(c.shares[k]), float(c.quality[k]), lo, hi))
        for k in [*range(0, c.n, step), c.n]
    )
    (x0, y0), (x1, y1) = _xy(0, f["weak_quality"], lo, hi), _xy(1, f["strong_quality"], lo, hi)
    ox, oy = _xy(f["oracle_share"], f["oracle_quality"], lo, hi)
    w, h = _W + 2 * _PAD, _H + 2 * _PAD
    return (
        f'<svg role=img aria-label="quality against share of strong calls" width={w} height={h}>'
        f"<rect x={_PAD} y={_PAD} width={_W} height={_H} fill=none stroke=#bbb/>"
        f'<polyline points="{points}" fill=none stroke=#3a7bd5 stroke-width=2/>'
        f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke=#999 '
        'stroke-dasharray="5 4"/>'
        f'<circle cx="{ox:.1f}" cy="{oy:.1f}" r=5 fill=#3a8a3a><title>oracle</title></circle>'
        f'<text x="{ox + 8:.1f}" y="{oy + 4:.1f}">oracle</text>'
        f'<text x="{x0 + 6:.1f}" y="{y0 + 16:.1f}">always weak</text>'
        f'<text x="{x1 - 6:.1f}" y="{y1 - 8:.1f}" text-anchor=end>always strong</text>'
        f"<text x={_PAD + _W / 2} y={h - 12} text-anchor=middle>share of strong calls "
        "(cost) →</text>"
        f'<text x=14 y={_PAD + _H / 2} transform="rotate(-90 14 {_PAD + _H / 2})" '
        "text-anchor=middle>quality →</text>"
        f"<text x={_PAD} y={_PAD + _H + 16}>0 %</text>"
        f"<text x={_PAD + _W} y={_PAD + _H + 16} text-anchor=end>100 %</text>"
        f"<text x={_PAD - 6} y={_PAD + _H} text-anchor=end>{100 * lo:.0f} %</text>"
        f"<text x={_PAD - 6} y={_PAD + 10} text-anchor=end>{100 * hi:.0f} %</text>"
        "</svg><p class=muted>blue: the router; dashed: the random router</p>"
    )
