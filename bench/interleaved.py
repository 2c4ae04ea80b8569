"""The metered overhead, measured fairly on a machine whose speed drifts.

Measured one after the other, two configurations of the same server differ by whatever the
machine (other tenants, frequency, the noisy neighbours of a 2-core VM) did between the two
runs: on this project's machines, back-to-back runs of the *same* configuration differ by up to
30 %. So both gateways run at once, idle while the other is loaded, and are loaded in turns:
``rounds`` rounds of ``seconds`` each, the order alternating (ABBA), so each round's pair shares
the machine's condition. The result is the median over rounds of metered ÷ foundation
requests/s, and the same for the server's CPU time per request (every thread, from ``/proc``).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.gateways import MODEL, modelyard_metered_spec, modelyard_spec, run_gateway
from bench.load import BENCH_KEY, LoadSpec, run_wrk, write_script
from bench.probe import check_chat
from bench.procs import BenchError, descendants
from bench.upstream import Upstream

FOUNDATION, METERED = "foundation", "metered"


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) so far of every thread of ``pid`` and of its descendants
    (the SQLite ledger's writer is a child process of the server)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in descendants(pid):
        with contextlib.suppress(FileNotFoundError):
            for tid in os.listdir(f"/proc/{proc}/task"):
                with (
                    contextlib.suppress(FileNotFoundError),
                    open(f"/proc/{proc}/task/{tid}/stat") as stat,
                ):
                    fields = stat.read().rsplit(")", 1)[1].split()
                    total += int(fields[11]) + int(fields[12])
    return total / tick


@dataclass
class Sample:
    rps: float
    cpu_us: float  # server CPU per request
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0


@dataclass(frozen=True)
class Turn:
    """One target loaded in a round: where to post, what, and which process to weigh."""

    url: str
    script: Path
    pid: int


def rotation(names: Sequence[str], round_: int) -> list[str]:
    """The order of round ``round_``: every other round runs backwards, and the start moves on
    every second round, so over rounds each target runs in every place and after every other
    (two targets: A B, B A, B A, A B: ABBA)."""
    start = (round_ // 2) % len(names)
    order = [*names[start:], *names[:start]]
    return order if round_ % 2 == 0 else order[::-1]


def load_turn(wrk: str, turn: Turn, connections: int, seconds: float) -> Sample:
    """One ``wrk`` run against ``turn``, with the server CPU it took per request."""
    before = cpu_seconds(turn.pid)
    spec = LoadSpec(turn.url, turn.script, connections, min(2, connections), seconds)
    load = run_wrk(wrk, spec)
    used = cpu_seconds(turn.pid) - before
    if load.failures:
        raise BenchError(f"{turn.url}: {load.failures} failed requests")
    cpu_us = used / max(1, load.requests) * 1e6
    return Sample(load.rps, cpu_us, load.p50_ms, load.p99_ms, load.requests)


def in_turns(
    wrk: str, turns: Mapping[str, Turn], rounds: int, seconds: float, connections: int
) -> dict[str, list[Sample]]:
    """Load every target of ``turns`` once a round, in the order of ``rotation``."""
    samples: dict[str, list[Sample]] = {name: [] for name in turns}
    for i in range(rounds):
        for name in rotation(list(turns), i):
            try:
                samples[name].append(load_turn(wrk, turns[name], connections, seconds))
            except BenchError as exc:
                raise BenchError(f"{name}, round {i + 1}: {exc}") from exc
    return samples


@dataclass
class Interleaved:
    rounds: int
    seconds: float
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {FOUNDATION: [], METERED: []})

    def _ratios(self, pick: str) -> list[float]:
        pairs = zip(self.samples[FOUNDATION], self.samples[METERED], strict=True)
        if pick == "rps":
            return [m.rps / f.rps for f, m in pairs if f.rps]
        return [f.cpu_us / m.cpu_us for f, m in pairs if m.cpu_us]  # > 1 would mean cheaper

    @property
    def ratio(self) -> float:
        """Median over rounds of metered ÷ foundation requests/s."""
        return statistics.median(self._ratios("rps"))

    @property
    def cpu_ratio(self) -> float:
        """Median over rounds of foundation ÷ metered CPU per request."""
        return statistics.median(self._ratios("cpu"))

    @property
    def ratio_interval(self) -> tuple[float, float] | None:
        """A 95 % confidence interval of the median ratio (see ``median_interval``)."""
        return median_interval(self._ratios("rps"))

    def median(self, name: str, what: str) -> float:
        return float(statistics.median(getattr(s, what) for s in self.samples[name]))

    def lines(self) -> list[str]:
        out = [f"interleaved: {self.rounds} rounds of {self.seconds:g} s per configuration"]
        for name in (FOUNDATION, METERED):
            cells = " ".join(f"{s.rps:,.0f}" for s in self.samples[name])
            out.append(f"  {name:<10} req/s per round: {cells}")
        rounds = " ".join(f"{r:.2f}" for r in self._ratios("rps"))
        out.append(f"  metered ÷ foundation per round: {rounds}")
        interval = self.ratio_interval
        out.append(
            f"  median req/s {self.median(FOUNDATION, 'rps'):,.0f} vs "
            f"{self.median(METERED, 'rps'):,.0f}; median ratio {self.ratio:.3f}"
            + (f" (95 % interval {interval[0]:.3f}–{interval[1]:.3f})" if interval else "")
        )
        out.append(
            f"  server CPU per request (median) {self.median(FOUNDATION, 'cpu_us'):,.0f} µs vs "
            f"{self.median(METERED, 'cpu_us'):,.0f} µs; median ratio {self.cpu_ratio:.3f}"
        )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "seconds": self.seconds,
            "ratio": self.ratio,
            "ratio_interval": self.ratio_interval,
            "cpu_ratio": self.cpu_ratio,
            "samples": {k: [vars(s) for s in v] for k, v in self.samples.items()},
        }


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval of the median of ``values``: the k-th smallest
    and k-th largest, k the largest rank that keeps the chance that the median lies outside
    below ``1 - confidence`` (each value falls either side of the median with even odds, so
    the count below it is binomial). None when there are too few values for that
    confidence (fewer than 6 at 95 %)."""
    n = len(values)
    tail = (1 - confidence) / 2
    below = 0.0  # P(at most k - 1 of the n values fall below the median)
    k = 0
    while k < n // 2:
        below += math.comb(n, k) / 2**n
        if below > tail:
            break
        k += 1
    if k == 0:
        return None
    ordered = sorted(values)
    return ordered[k - 1], ordered[n - k]


def measure_interleaved(
    wrk: str,
    upstream: Upstream,
    rounds: int = 10,
    seconds: float = 4.0,
    connections: int = 32,
    warmup: float = 3.0,
) -> Interleaved:
    """Start both configurations, warm each up, then load them in alternating turns."""
    if rounds < 1:
        raise BenchError("interleaved rounds must be at least 1")
    result = Interleaved(rounds, seconds)
    metered_spec, metered_key = modelyard_metered_spec(upstream)
    with (
        run_gateway(modelyard_spec(upstream)) as foundation,
        run_gateway(metered_spec) as metered,
    ):
        targets = {
            FOUNDATION: (foundation, write_script(MODEL, False, BENCH_KEY), BENCH_KEY),
            METERED: (metered, write_script(MODEL, False, metered_key), metered_key),
        }
        threads = min(2, connections)
        for gateway, script, key in targets.values():
            check_chat(gateway.chat_url, MODEL, False, key)
            if warmup > 0:
                run_wrk(wrk, LoadSpec(gateway.chat_url, script, connections, threads, warmup))
        turns = {
            name: Turn(gw.chat_url, script, gw.pid) for name, (gw, script, _) in targets.items()
        }
        result.samples = in_turns(wrk, turns, rounds, seconds, connections)
    return result
