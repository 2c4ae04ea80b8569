"""Modelyard against what Python allows: each configuration as a ratio of the parsing proxy.

``python -m bench.ceilings [--rounds N] [--seconds S] [--connections C] [--only MODE]``
starts the nginx fake upstream and, at once, on one worker each:

- ``featureless`` and ``parsing``: the reference proxies of ``bench/proxies.py`` (Modelyard's
  server and client stack; the parsing one decodes and re-encodes the request and the answer
  with orjson, the least a metering gateway must do);
- ``default``: Modelyard as shipped: usage ledger (SQLite) and access log on, no keys;
- ``foundation``: no ledger, no access log, no keys;
- ``metered``: a project key with RPM/TPM limits and budgets, prices, the ledger
  (``bench.gateways.modelyard_metered_spec``).

Each is probed and warmed up, then loaded with ``wrk`` in interleaved rounds
(``bench.interleaved.rotation``: the order rotates and reverses, so each round's targets share
the machine's condition), non-streaming and streaming. Printed per mode: the median req/s, the
median over rounds of each target ÷ the parsing proxy of the same round with a 95 % interval,
server CPU per request, and p50/p99 at the load's connections. The JSON goes to
``bench/.work/ceilings-<timestamp>.json``. Goal (issue 25): default ≥ 0.80 and metered ≥ 0.70
of the parsing proxy, in both modes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import proxies
from bench.clients import AIOHTTP
from bench.gateways import (
    MODEL,
    STREAM_MODEL,
    Gateway,
    GatewaySpec,
    modelyard_metered_spec,
    modelyard_spec,
    run_gateway,
)
from bench.interleaved import Sample, Turn, in_turns, median_interval
from bench.load import BENCH_KEY, LoadSpec, run_wrk, write_script
from bench.probe import check_chat
from bench.procs import REPO_DIR, WORK_DIR, BenchError, free_port, stop_on_sigterm
from bench.servers import UVICORN
from bench.tools import ensure_tools
from bench.upstream import Upstream, run_upstream

FEATURELESS, PARSING = proxies.FEATURELESS, proxies.PARSING
DEFAULT, FOUNDATION, METERED = "default", "foundation", "metered"
TARGETS = (FEATURELESS, PARSING, DEFAULT, FOUNDATION, METERED)
MODES = ("nonstream", "stream")
GOALS = {DEFAULT: 0.80, METERED: 0.70}  # ÷ parsing, both modes
BASE = "@base"  # a target served by the code of another checkout (``--baseline``)
DEFAULT_CONFIG: dict[str, object] = {"store": {"usage_ledger": True}}  # Modelyard as shipped


def proxy_spec(
    kind: str,
    upstream: Upstream,
    workers: int = 1,
    stack: tuple[str, str] = (UVICORN, AIOHTTP),
) -> GatewaySpec:
    """A reference proxy of ``kind`` in front of the fake upstream; ``stack``: its server and
    client (Modelyard's by default; any other is named in the process's name)."""
    port = free_port()
    origin = upstream.base_url.removesuffix("/v1")
    env = {"PYTHONPATH": str(REPO_DIR)}
    name = f"proxy-{kind}" if stack == (UVICORN, AIOHTTP) else "-".join(("proxy", kind, *stack))
    return GatewaySpec(name, proxies.argv(kind, origin, port, workers, stack), "/readyz", port, env)


def target_spec(
    name: str, upstream: Upstream, workers: int = 1, baseline: Path | None = None
) -> tuple[GatewaySpec, str]:
    """How to start target ``name``, and the key its requests carry. ``<name>@base`` (default
    and foundation): the same configuration served by ``baseline``'s code."""
    if name == PARSING + BASE:  # the yardstick on the baseline's server stack (its protocol)
        if baseline is None:
            raise BenchError(f"{name}: give --baseline")
        spec = proxy_spec(PARSING, upstream, workers)
        env = {**spec.env, "PYTHONPATH": f"{baseline / 'src'}:{spec.env['PYTHONPATH']}"}
        return replace(spec, name=spec.name + "-base", env=env), BENCH_KEY
    if name.endswith(BASE):
        if baseline is None or name.removesuffix(BASE) not in (DEFAULT, FOUNDATION):
            raise BenchError(f"{name}: give --baseline; only default and foundation have one")
        default = name == DEFAULT + BASE
        extra = DEFAULT_CONFIG if default else None
        label = f"modelyard-{name.replace('@', '-')}"
        spec = modelyard_spec(upstream, default, extra, label, workers)
        return replace(spec, env={**spec.env, "PYTHONPATH": str(baseline / "src")}), BENCH_KEY
    if name in (FEATURELESS, PARSING):
        return proxy_spec(name, upstream, workers), BENCH_KEY
    if name == DEFAULT:
        spec = modelyard_spec(upstream, True, DEFAULT_CONFIG, "modelyard-default", workers)
        return spec, BENCH_KEY
    if name == FOUNDATION:
        return modelyard_spec(upstream, False, None, "modelyard-foundation", workers), BENCH_KEY
    if name == METERED:
        if workers != 1:
            raise BenchError("the metered target runs on one worker")
        return modelyard_metered_spec(upstream)
    raise BenchError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")


@dataclass(frozen=True)
class Running:
    """A started target and the key its requests carry."""

    gateway: Gateway
    key: str

    def turn(self, mode: str) -> Turn:
        stream = mode == "stream"
        script = write_script(STREAM_MODEL if stream else MODEL, stream, self.key)
        return Turn(self.gateway.chat_url, script, self.gateway.pid)


@contextlib.contextmanager
def started(
    upstream: Upstream, names: Sequence[str], workers: int = 1, baseline: Path | None = None
) -> Iterator[dict[str, Running]]:
    """Start every target of ``names`` at once; stop them all when the block ends."""
    with contextlib.ExitStack() as stack:
        running: dict[str, Running] = {}
        for name in names:
            spec, key = target_spec(name, upstream, workers, baseline)
            running[name] = Running(stack.enter_context(run_gateway(spec)), key)
        yield running


def warm(
    wrk: str,
    running: dict[str, Running],
    modes: Sequence[str],
    seconds: float,
    connections: int = 32,
) -> None:
    """Probe every target in every mode (the answer must be the fake's), then load it a while."""
    for mode in modes:
        stream = mode == "stream"
        for target in running.values():
            check_chat(
                target.gateway.chat_url, STREAM_MODEL if stream else MODEL, stream, target.key
            )
            if seconds > 0:
                turn = target.turn(mode)
                run_wrk(wrk, LoadSpec(turn.url, turn.script, connections, 2, seconds))


@dataclass
class Ceilings:
    """Every round's samples, per mode and target."""

    rounds: int
    seconds: float
    connections: int
    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)

    label = "÷ parsing"  # what every target is a ratio of

    def base_of(self, name: str) -> str:
        """The target ``name`` is compared with: the parsing proxy on the same server stack
        (a baseline's targets with ``parsing@base``, which is itself compared with today's)."""
        if name.endswith(BASE) and name != PARSING + BASE:
            return PARSING + BASE
        return PARSING

    def ratios(self, mode: str, name: str, base: str | None = None) -> list[float]:
        """Per round: ``name``'s req/s ÷ ``base``'s (by default ``base_of(name)``) in the
        same round."""
        base = base or self.base_of(name)
        pairs = zip(self.samples[mode][name], self.samples[mode][base], strict=True)
        return [s.rps / b.rps for s, b in pairs if b.rps]

    def cpu_ratios(self, mode: str, name: str) -> list[float]:
        """Per round: ``name``'s server CPU per request ÷ its base's (above 1: more work per
        request; unlike req/s it does not depend on how wrk, nginx and the servers share the
        cores)."""
        base = self.base_of(name)
        pairs = zip(self.samples[mode][name], self.samples[mode][base], strict=True)
        return [s.cpu_us / b.cpu_us for s, b in pairs if b.cpu_us]

    def ratio(self, mode: str, name: str, base: str | None = None) -> float:
        return statistics.median(self.ratios(mode, name, base))

    def median(self, mode: str, name: str, what: str) -> float:
        return float(statistics.median(getattr(s, what) for s in self.samples[mode][name]))

    def table(self, mode: str) -> list[str]:
        width = max(16, *(len(name) for name in self.samples[mode]))
        head = f"{mode:<{width}} {'req/s':>8} {self.label:>10} {'95 % interval':>14}"
        head += f" {'CPU µs/req':>10} {'CPU ' + self.label[:3]:>8} {'p50 ms':>7} {'p99 ms':>7}"
        lines = [head, "-" * len(head)]
        for name in self.samples[mode]:
            interval = median_interval(self.ratios(mode, name))
            span = f"{interval[0]:.3f}–{interval[1]:.3f}" if interval else "—"
            lines.append(
                f"{name:<{width}} {self.median(mode, name, 'rps'):>8,.0f} "
                f"{self.ratio(mode, name):>10.3f} {span:>14} "
                f"{self.median(mode, name, 'cpu_us'):>10,.0f} "
                f"{statistics.median(self.cpu_ratios(mode, name)):>8.2f} "
                f"{self.median(mode, name, 'p50_ms'):>7.2f} "
                f"{self.median(mode, name, 'p99_ms'):>7.2f}"
            )
        return lines

    def goal_lines(self) -> list[str]:
        out = []
        for mode in self.samples:
            for name, goal in GOALS.items():
                if name in self.samples[mode] and PARSING in self.samples[mode]:
                    ratio = self.ratio(mode, name)
                    verdict = "met" if ratio >= goal else "MISSED"
                    out.append(
                        f"{name} ÷ parsing, {mode}: {ratio:.3f} (goal ≥ {goal:.2f}) {verdict}"
                    )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "seconds": self.seconds,
            "connections": self.connections,
            "samples": {
                mode: {name: [vars(s) for s in rows] for name, rows in per.items()}
                for mode, per in self.samples.items()
            },
            "ratios": {
                mode: {name: self.ratios(mode, name) for name in per}
                for mode, per in self.samples.items()
            },
            "cpu_ratios": {
                mode: {name: self.cpu_ratios(mode, name) for name in per}
                for mode, per in self.samples.items()
            },
        }


def measure(
    wrk: str,
    upstream: Upstream,
    names: Sequence[str] = TARGETS,
    modes: Sequence[str] = MODES,
    settings: tuple[int, float, int, float] = (8, 3.0, 32, 2.0),
    baseline: Path | None = None,
) -> Ceilings:
    """Start ``names`` at once and load them in turns, mode by mode.
    ``settings``: rounds, seconds per round, connections, warm-up seconds per target and mode."""
    if PARSING not in names:
        raise BenchError("the parsing proxy is the yardstick: it must be among the targets")
    result = Ceilings(*settings[:3])
    with started(upstream, names, baseline=baseline) as running:
        return load_in_turns(wrk, running, modes, settings[3], result)


def load_in_turns(
    wrk: str, running: dict[str, Running], modes: Sequence[str], warmup: float, into: Ceilings
) -> Ceilings:
    """Warm up every running target, then load them in turns, mode by mode, for ``into``'s
    rounds, seconds and connections; the samples go to ``into``."""
    warm(wrk, running, modes, warmup, into.connections)
    for mode in modes:
        turns = {name: target.turn(mode) for name, target in running.items()}
        into.samples[mode] = in_turns(wrk, turns, into.rounds, into.seconds, into.connections)
    return into


def write_result(prefix: str, data: dict[str, Any]) -> str:
    """``bench/.work/<prefix>-<timestamp>.json`` with the load average and the commit."""
    out = WORK_DIR / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"loadavg": os.getloadavg(), "cpu_count": os.cpu_count(), "time": time.time()}
    out.write_text(json.dumps({"meta": meta, **data}, indent=2) + "\n")
    return str(out)


def add_load_arguments(parser: argparse.ArgumentParser, rounds: int = 8) -> None:
    """How the targets are loaded: ``--rounds``, ``--seconds``, ``--connections``, ``--warmup``,
    ``--only`` (a mode)."""
    parser.add_argument(
        "--rounds", type=int, default=rounds, help="rounds per mode (≥ 6 for an interval)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per target and round")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per target and mode")
    parser.add_argument("--only", choices=MODES, help="one mode")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceilings", description=__doc__)
    add_load_arguments(parser)
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. a worktree of main): its default and foundation "
        "configurations are measured too, in the same rounds (targets default@base, "
        "foundation@base), each ÷ the parsing proxy on that checkout's server protocol "
        "(parsing@base)",
    )
    args = parser.parse_args(argv)
    if args.baseline is not None:
        args.targets += [t + BASE for t in (PARSING, DEFAULT, FOUNDATION) if t in args.targets]
    stop_on_sigterm()
    tools = ensure_tools()
    modes = (args.only,) if args.only else MODES
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before: {load} on {os.cpu_count()} cores", flush=True)
    settings = (args.rounds, args.seconds, args.connections, args.warmup)
    with run_upstream(tools["nginx"]) as upstream:
        result = measure(tools["wrk"], upstream, args.targets, modes, settings, args.baseline)
    print_report("ceilings", result, modes, result.goal_lines())
    return 0


def print_report(prefix: str, result: Ceilings, modes: Sequence[str], notes: list[str]) -> None:
    """Each mode's table, then ``notes``, the load average now, and where the JSON went
    (``write_result(prefix, ...)``)."""
    for mode in modes:
        print("\n".join(result.table(mode)), end="\n\n")
    print("\n".join(notes))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average after: {load}")
    print(f"results written to {write_result(prefix, result.to_json())}")


if __name__ == "__main__":
    sys.exit(main())
