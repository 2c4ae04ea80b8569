"""A router evaluation as one self-contained HTML page (inline CSS and SVG, like eval reports;
markup in ``templates/router_report.html``)."""

from __future__ import annotations

from typing import Any

from modelyard.evals.routing_eval import Evaluation
from modelyard.evals.templating import render

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
    excluded = ", ".join(ev.excluded_sources) or "none"
    return render(
        "router_report.html",
        ev=ev,
        f=f,
        verdict=verdict,
        rows=_rows(ev),
        excluded=excluded,
        c=_chart(ev),
    )


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f} %"


def _rows(ev: Evaluation) -> list[tuple[str, str]]:
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
    return rows


def _xy(share: float, quality: float, lo: float, hi: float) -> tuple[float, float]:
    span = (hi - lo) or 1.0
    return _PAD + share * _W, _PAD + (1 - (quality - lo) / span) * _H


def _chart(ev: Evaluation) -> dict[str, Any]:
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
    return {
        "points": points,
        "x0": x0, "y0": y0, "x1": x1, "y1": y1, "ox": ox, "oy": oy, "lo": lo, "hi": hi,
        "width": _W + 2 * _PAD, "height": _H + 2 * _PAD, "w": _W, "h": _H, "pad": _PAD,
    }  # fmt: skip
