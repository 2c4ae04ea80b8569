"""``make bench-check`` (``python -m bench.check``): every floor against its budget.

Reads ``bench/budgets.toml``, runs a short version of each benchmark a budget names (minutes in
all, not tens), and prints one line per budget: PASS or MISS, the figure, its bound, and the
95 % interval of the median over rounds where there is one. Exits 1 when a budget is missed or
a figure could not be measured. Not part of ``make test``: it loads the machine for minutes
and its verdicts are statistical.

The groups of figures (``measure = "group.figure"`` in the budgets):

- ``ceilings``: ``bench.ceilings`` with the parsing proxy, the default and the metered
  configurations, non-streaming and streaming: ``default.nonstream`` … req/s ÷ parsing proxy,
  and ``default.nonstream.cpu`` …: the parsing proxy's server CPU per request ÷ the target's
  (what the req/s ratio would be with the cores to itself; steadier on a shared machine);
- ``pathcost``: ``bench.pathcost``: ``default.nonstream`` … the configuration's Python bytecodes
  per request ÷ the parsing proxy's (load-independent: guards against a regression of the
  request path's own work);
- ``observability``: ``bench.bytecodes``: ``metrics``, bytecodes per request metrics on ÷ off;
- ``responses``: ``bench.responses``: ``responses``, req/s of a Responses call (``store:
  false``) ÷ a Chat Completions call; ``responses.cpu``, the same as CPU per request (chat's ÷
  the Responses call's);
- ``guardrails``: ``bench.guardrails``: ``default_p50_ms``, p50 CPU ms the default policy adds
  on a 1 kB prompt;
- ``router``: ``bench.router_decision``: ``p99_ms``, p99 CPU ms of a learned decision (needs
  the routing data: ``--routing-data DIR``);
- ``memory``: ``bench.machine soak``, shortened to ``SOAK_REQUESTS``: ``worker_mb``, the peak
  resident memory of the served default configuration's worker (one worker: the ``serve``
  process) after its warm-up, in MB, as issue 25 states its goal (the 100k-request soak is
  ``python -m bench.machine soak``).

``--only GROUP ...`` runs some groups; ``--rounds`` and ``--seconds`` set the interleaved runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.ceilings import PARSING, Ceilings
from bench.interleaved import median_interval
from bench.procs import BENCH_DIR, BenchError, stop_on_sigterm
from bench.tools import ensure_tools
from bench.upstream import run_upstream

BUDGETS = BENCH_DIR / "budgets.toml"
SOAK_REQUESTS = 30_000  # the memory group's soak: past the first growth, in well under a minute


@dataclass(frozen=True)
class Figure:
    """A measured figure and, when it is a median over rounds, its 95 % interval."""

    value: float
    interval: tuple[float, float] | None = None

    @classmethod
    def median_of(cls, values: list[float]) -> Figure:
        return cls(statistics.median(values), median_interval(values))


@dataclass(frozen=True)
class Budget:
    name: str
    measure: str
    low: float | None
    high: float | None

    @property
    def group(self) -> str:
        return self.measure.split(".", 1)[0]

    def met(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def bound(self) -> str:
        return f"≥ {self.low:g}" if self.low is not None else f"≤ {self.high:g}"


def load_budgets(path: Path = BUDGETS) -> list[Budget]:
    """The budgets of ``path``; each has exactly one of ``min`` and ``max``."""
    data = tomllib.loads(path.read_text())
    budgets = []
    for entry in data.get("budget", []):
        low, high = entry.get("min"), entry.get("max")
        if (low is None) == (high is None) or "." not in entry.get("measure", ""):
            raise BenchError(f"{path}: {entry.get('name')!r} needs a group.figure measure and "
                             "exactly one of min and max")  # fmt: skip
        budgets.append(Budget(entry["name"], entry["measure"], low, high))
    return budgets


@dataclass(frozen=True)
class Settings:
    rounds: int
    seconds: float
    routing_data: Path


def _ceilings(settings: Settings) -> dict[str, Figure]:
    from bench.ceilings import DEFAULT, METERED, MODES, measure

    tools = ensure_tools()
    with run_upstream(tools["nginx"]) as upstream:
        run = (settings.rounds, settings.seconds, 32, 1.0)
        result = measure(tools["wrk"], upstream, (PARSING, DEFAULT, METERED), MODES, run)
    return ceiling_figures(result)


def ceiling_figures(result: Ceilings) -> dict[str, Figure]:
    """The default and metered configurations ÷ the parsing proxy, by req/s and by CPU."""
    figures = {}
    for mode in result.samples:
        for name in set(result.samples[mode]) - {PARSING}:
            figures[f"{name}.{mode}"] = Figure.median_of(result.ratios(mode, name))
            # Parsing proxy's CPU per request ÷ the target's: the req/s ratio if the server
            # had the cores to itself, steadier on a shared machine.
            efficiency = [1 / r for r in result.cpu_ratios(mode, name) if r]
            figures[f"{name}.{mode}.cpu"] = Figure.median_of(efficiency)
    return figures


def _observability(settings: Settings) -> dict[str, Figure]:
    from bench.bytecodes import TREE, measure
    from bench.gateways import foundation_config

    with run_upstream(ensure_tools()["nginx"]) as upstream:
        off = foundation_config(upstream, access_log=False)
        on = {**off, "observability": {"metrics": {"enabled": True}}}
        return {"metrics": Figure(measure(TREE, on, 50) / measure(TREE, off, 50))}


def _pathcost(settings: Settings) -> dict[str, Figure]:
    from bench.pathcost import TREE, run

    with run_upstream(ensure_tools()["nginx"]) as upstream:
        results = run({"this": TREE}, 50, upstream.base_url.removesuffix("/v1"))
    figures = {}
    for mode in ("nonstream", "stream"):
        row = results[f"this {mode}"]
        for name in ("default", "metered"):
            figures[f"{name}.{mode}"] = Figure(row[name] / row["parsing"])
    return figures


def _responses(settings: Settings) -> dict[str, Figure]:
    from bench.responses import measure

    result = measure(settings.rounds, settings.seconds, 32)
    pairs = zip(result.cpu_us["chat"], result.cpu_us["responses"], strict=True)
    return {
        "responses": Figure.median_of(result.ratios("responses")),
        "responses.cpu": Figure.median_of([chat / mine for chat, mine in pairs if mine]),
    }


def _guardrails(settings: Settings) -> dict[str, Figure]:
    from bench.guardrails import latency

    added = latency(300)["default_policy"]["prompt"]["p50_added_ms"]
    return {"default_p50_ms": Figure(float(added))}


def _router(settings: Settings) -> dict[str, Figure]:
    from bench.router_decision import latencies, percentile, prompts_from, trained

    if not settings.routing_data.is_dir():
        raise BenchError(f"no routing data at {settings.routing_data}: pass --routing-data DIR")
    router = trained(settings.routing_data)
    prompts = prompts_from(settings.routing_data, 1000)
    latencies(router, prompts[:200])  # warm-up
    _, cpu = latencies(router, prompts)
    return {"p99_ms": Figure(percentile(cpu, 0.99))}


def _memory(settings: Settings) -> dict[str, Figure]:
    from bench.machine import soak

    tools = ensure_tools()
    run = argparse.Namespace(workers=[1], warmup=1.0, connections=32, requests=SOAK_REQUESTS)
    run.baseline = None
    run.seconds = 2 * settings.seconds
    with run_upstream(tools["nginx"]) as upstream:
        result = soak(tools["wrk"], upstream, run)
    return {"worker_mb": Figure(result["default"]["worker_peak_mb"])}


GROUPS: dict[str, Callable[[Settings], dict[str, Figure]]] = {
    "ceilings": _ceilings,
    "pathcost": _pathcost,
    "observability": _observability,
    "responses": _responses,
    "guardrails": _guardrails,
    "router": _router,
    "memory": _memory,
}


def verdicts(budgets: list[Budget], figures: dict[str, Figure | str]) -> tuple[list[str], bool]:
    """One line per budget, and whether every budget was measured and met."""
    lines, ok = [], True
    for budget in budgets:
        figure = figures.get(budget.measure, "not measured")
        if isinstance(figure, str):
            ok = False
            lines.append(f"FAIL  {budget.name}: {figure}")
            continue
        met = budget.met(figure.value)
        ok = ok and met
        span = ""
        if figure.interval is not None:
            low, high = figure.interval
            span = f" (95 % interval {low:.3f}–{high:.3f})"
            if budget.met(low) != budget.met(high):
                span += "; the interval spans the bound: more --rounds to settle it"
        lines.append(
            f"{'PASS' if met else 'MISS'}  {budget.name}: {figure.value:.4f} {budget.bound()}{span}"
        )
    return lines, ok


def measure_all(
    budgets: list[Budget], groups: list[str], settings: Settings
) -> dict[str, Figure | str]:
    """Every figure the budgets of ``groups`` need; a group that fails gives its reason."""
    figures: dict[str, Figure | str] = {}
    for group in groups:
        print(f"measuring {group} …", flush=True)
        try:
            for key, figure in GROUPS[group](settings).items():
                figures[f"{group}.{key}"] = figure
        except (BenchError, OSError, subprocess.CalledProcessError) as exc:
            for budget in budgets:
                if budget.group == group:
                    figures[budget.measure] = f"could not be measured: {exc}"
    return figures


def main(argv: list[str] | None = None) -> int:
    from bench.router_decision import DATA

    parser = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__)
    parser.add_argument("--budgets", type=Path, default=BUDGETS)
    parser.add_argument("--only", nargs="+", choices=GROUPS, help="run only these groups")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (≥ 6)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per round")
    parser.add_argument("--routing-data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    budgets = load_budgets(args.budgets)
    unknown = {b.group for b in budgets} - set(GROUPS)
    if unknown:
        parser.error(f"{args.budgets}: unknown groups {', '.join(sorted(unknown))}")
    groups = [g for g in GROUPS if g in {b.group for b in budgets}]
    if args.only:
        groups = [g for g in groups if g in args.only]
        budgets = [b for b in budgets if b.group in groups]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before: {load} on {os.cpu_count()} cores", flush=True)
    settings = Settings(args.rounds, args.seconds, args.routing_data)
    lines, ok = verdicts(budgets, measure_all(budgets, groups, settings))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nbudgets ({args.budgets.name}; load average after: {load}):")
    for line in lines:
        print(f"  {line}")
    print("all budgets met" if ok else "BUDGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
