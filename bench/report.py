"""Turn measurements into the printed table, the pass/fail lines and the JSON record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.interleaved import Interleaved
from bench.load import LoadResult

TARGET_RPS = 4000.0
TARGET_ADDED_P50_MS = 0.5
# Auth, limits and the ledger may cost at most 15 % of Modelyard's own throughput.
TARGET_METERED_RATIO = 0.85
METERED = "metered"
ROWS = ("upstream", "modelyard", METERED, "litellm")
MODES = ("nonstream", "stream")


@dataclass
class TargetRun:
    """One target (upstream alone or a gateway) in one mode."""

    name: str
    mode: str
    throughput: LoadResult | None = None
    latency: LoadResult | None = None
    error: str | None = None

    @property
    def failures(self) -> int:
        return sum(r.failures for r in (self.throughput, self.latency) if r is not None)

    @property
    def ok(self) -> bool:
        complete = self.throughput is not None and self.latency is not None
        return self.error is None and complete and self.failures == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "throughput": self.throughput.to_json() if self.throughput else None,
            "latency": self.latency.to_json() if self.latency else None,
        }


@dataclass
class Results:
    """Everything one ``python -m bench.run`` measured."""

    settings: dict[str, Any]
    runs: dict[str, dict[str, TargetRun]] = field(default_factory=dict)
    rss: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    interleaved: Interleaved | None = None  # the metered target's measurement

    def put(self, run: TargetRun) -> None:
        self.runs.setdefault(run.mode, {})[run.name] = run

    def get(self, mode: str, name: str) -> TargetRun | None:
        return self.runs.get(mode, {}).get(name)


def added_p50(results: Results, mode: str, name: str) -> float | None:
    """Gateway p50 at one connection minus the upstream's, in ms."""
    run, base = results.get(mode, name), results.get(mode, "upstream")
    if run is None or base is None or not run.ok or not base.ok:
        return None
    assert run.latency is not None and base.latency is not None
    return run.latency.p50_ms - base.latency.p50_ms


def _ratio(mine: float | None, peer: float | None) -> float | None:
    if mine is None or peer is None or peer == 0:
        return None
    return mine / peer


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _times(value: float | None) -> str:
    # Three significant digits: latency ratios are often far below 0.01.
    return "—" if value is None else f"{value:,.3g}×"


def _row(results: Results, mode: str, name: str) -> list[str]:
    run = results.get(mode, name)
    if run is None:
        return [name, f"MISSING: {results.missing.get(name, 'not run')}"]
    if not run.ok:
        detail = (run.error or f"{run.failures} failed requests").splitlines()[0]
        return [name, f"FAILED: {detail[:100]}"]
    assert run.throughput is not None and run.latency is not None
    peer = results.get(mode, "litellm")
    peer_rps = peer.throughput.rps if peer and peer.ok and peer.throughput else None
    vs_peer = _ratio(run.throughput.rps, peer_rps) if name != "upstream" else None
    added = added_p50(results, mode, name) if name != "upstream" else None
    return [
        name,
        _num(run.throughput.rps, 0),
        _num(run.latency.p50_ms, 3),
        _num(run.latency.p99_ms, 3),
        _num(added, 3),
        _times(vs_peer),
        str(run.failures),
    ]


def _ratio_row(results: Results, mode: str) -> list[str]:
    mine, peer = results.get(mode, "modelyard"), results.get(mode, "litellm")
    if not (mine and peer and mine.ok and peer.ok):
        return ["modelyard ÷ litellm", "—", "—", "—", "—", "", ""]
    assert mine.throughput and peer.throughput and mine.latency and peer.latency
    return [
        "modelyard ÷ litellm",
        _times(_ratio(mine.throughput.rps, peer.throughput.rps)),
        _times(_ratio(mine.latency.p50_ms, peer.latency.p50_ms)),
        _times(_ratio(mine.latency.p99_ms, peer.latency.p99_ms)),
        _times(_ratio(added_p50(results, mode, "modelyard"), added_p50(results, mode, "litellm"))),
        "",
        "",
    ]


def format_table(results: Results, mode: str) -> str:
    """The table of one mode: rows upstream / modelyard / litellm and the ratio row."""
    conns = results.settings.get("connections", 32)
    header = [
        mode,
        f"req/s @{conns}",
        "p50 @1 ms",
        "p99 @1 ms",
        "added p50 ms",
        "req/s vs litellm",
        "failed",
    ]
    rows = [header] + [_row(results, mode, name) for name in ROWS] + [_ratio_row(results, mode)]
    # Rows that carry a message instead of figures stay out of the column widths.
    full = [row for row in rows if len(row) == len(header)]
    widths = [max(len(row[i]) for row in full) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        if len(row) != len(header):
            lines.append(f"{row[0].ljust(widths[0])}  {row[1]}")
            continue
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def target_lines(results: Results) -> tuple[list[str], bool]:
    """PASS/FAIL lines for the issue's targets and whether all targets passed."""
    lines: list[str] = []
    if "nonstream" not in results.runs:
        lines.append("NOT RUN  the targets are defined on the non-streaming mode")
        return lines, False
    passed = True
    run = results.get("nonstream", "modelyard")
    rps = run.throughput.rps if run and run.ok and run.throughput else None
    conns = results.settings.get("connections", 32)
    if rps is None:
        passed = False
        lines.append(f"FAIL  modelyard non-streaming req/s @{conns} ≥ {TARGET_RPS:,.0f}: no result")
    else:
        verdict = "PASS" if rps >= TARGET_RPS else "FAIL"
        passed &= rps >= TARGET_RPS
        lines.append(
            f"{verdict}  modelyard non-streaming req/s @{conns} ≥ {TARGET_RPS:,.0f}: {rps:,.0f}"
        )
    if conns != 32:
        lines.append(f"      (the target is defined at 32 connections; this run used {conns})")
    passed &= _metered_line(results, lines)
    for mode in MODES:
        added = added_p50(results, mode, "modelyard")
        label = f"modelyard {mode} added p50 @1 ≤ {TARGET_ADDED_P50_MS} ms"
        if mode == "stream":
            label += " (informational)"
        if added is None:
            if mode == "nonstream":
                passed = False
                lines.append(f"FAIL  {label}: no result")
            continue
        ok = added <= TARGET_ADDED_P50_MS
        if mode == "nonstream":
            passed &= ok
        lines.append(f"{'PASS' if ok else 'FAIL'}  {label}: {added:.3f} ms")
    return lines, passed


def _metered_line(results: Results, lines: list[str]) -> bool:
    """Modelyard with auth, limits and the ledger against itself without, same run."""
    plain, metered = results.get("nonstream", "modelyard"), results.get("nonstream", METERED)
    if metered is None:
        lines.append("NOT RUN  metered ÷ modelyard (--skip-metered)")
        return True
    label = f"metered ÷ modelyard non-streaming req/s ≥ {TARGET_METERED_RATIO}"
    if not (plain and plain.ok and plain.throughput and metered.ok and metered.throughput):
        lines.append(f"FAIL  {label}: no result")
        return False
    ratio = metered.throughput.rps / plain.throughput.rps
    sequential = f"{ratio:.3f} ({metered.throughput.rps:,.0f} vs {plain.throughput.rps:,.0f})"
    if results.interleaved is None:
        ok = ratio >= TARGET_METERED_RATIO
        lines.append(f"{'PASS' if ok else 'FAIL'}  {label}: {sequential}")
        return ok
    interleaved = results.interleaved
    ok = interleaved.ratio >= TARGET_METERED_RATIO
    interval = interleaved.ratio_interval
    spread = f", 95 % interval {interval[0]:.3f}–{interval[1]:.3f}" if interval else ""
    lines.append(
        f"{'PASS' if ok else 'FAIL'}  {label}: {interleaved.ratio:.3f} "
        f"(median of {interleaved.rounds} interleaved rounds{spread}; the table's back-to-back "
        f"runs gave {sequential})"
    )
    return ok


def rss_lines(results: Results) -> list[str]:
    lines = []
    for name in ROWS[1:]:
        if name in results.rss:
            lines.append(f"{name:<10} RSS after the run: {results.rss[name] / 2**20:,.1f} MiB")
    return lines


def write_json(results: Results, path: Path, passed: bool) -> None:
    data = {
        "settings": results.settings,
        "targets": {
            "rps_min": TARGET_RPS,
            "added_p50_ms_max": TARGET_ADDED_P50_MS,
            "metered_ratio_min": TARGET_METERED_RATIO,
            "passed": passed,
        },
        "metered_interleaved": results.interleaved.to_json() if results.interleaved else None,
        "runs": {
            mode: {name: run.to_json() for name, run in runs.items()}
            for mode, runs in results.runs.items()
        },
        "added_p50_ms": {
            mode: {name: added_p50(results, mode, name) for name in ROWS[1:]} for mode in MODES
        },
        "rss_bytes": results.rss,
        "missing": results.missing,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
