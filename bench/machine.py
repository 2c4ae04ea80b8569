"""Using the machine: worker counts, latency by connections, and memory over a long run.

``python -m bench.machine workers [--workers 1 2 4] [--busy 0 1]``: the parsing proxy and
Modelyard's default configuration, each started with every worker count at once, loaded in
interleaved rounds (``bench.interleaved.rotation``) at ``--connections``; printed per worker
count: median req/s of each, default ÷ parsing, and each ÷ its one-worker figure. ``--busy 1``
runs the same next to one busy process (``bench.local_threads.busy_loops``), which stands for the
embedded model's process generating on its CPUs - 1 threads (``local.threads``' default).

``python -m bench.machine latency [--levels 1 32 256]``: the parsing proxy and the default
configuration (one worker) loaded in turns at each number of connections; p50 and p99 of each,
and the latency Modelyard adds over the parsing proxy (median over rounds of the difference).

``python -m bench.machine soak [--requests 100000]``: the default configuration under load at
``--connections`` in ``--seconds`` segments until the count is reached; the resident memory of
the server and all its processes (every worker, the ledger's writer) after each segment, and
the slope of a least-squares line through the samples after the first fifth (MB per 10,000
requests), and the same for the worker alone (with one worker, the ``serve`` process: uvicorn
runs the app in it). ``--baseline PATH``: the same configuration served by another checkout's
code beside it, loaded in alternate segments. Goal (issue 25): ≤ 100 MB and flat.

``python -m bench.machine rss [--requests 5000] [--baseline PATH]``: the default configuration
served as ``modelyard serve`` serves it (one worker, the ledger on in SQLite, the access log on,
no keys), loaded with ``--requests`` non-streaming and as many streaming requests; then the
resident memory of each of its processes, by role. With one worker uvicorn runs the app in the
``serve`` process itself, so the figure of issue 25 is that process's (``worker``); the
ledger's writer is its child (``python -I .../ledger_child.py``), reported apart. Then
``bench.imports`` in a fresh process with the same config and data directory: the RSS of each
start-up step and the top-level packages by what loading them cost. ``--baseline`` serves the
same configuration from another checkout's ``src`` beside it, loaded in the same turns.

Every command writes its JSON under ``bench/.work/`` and prints the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.ceilings import (
    BASE,
    DEFAULT,
    PARSING,
    Running,
    started,
    target_spec,
    warm,
    write_result,
)
from bench.gateways import GatewaySpec, run_gateway
from bench.interleaved import in_turns, load_turn, median_interval
from bench.local_threads import busy_loops
from bench.procs import (
    REPO_DIR,
    WORK_DIR,
    BenchError,
    descendants,
    own_rss_bytes,
    rss_bytes,
    stop_on_sigterm,
)
from bench.tools import ensure_tools
from bench.upstream import Upstream, run_upstream

MB = 1024 * 1024


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _interval(values: list[float]) -> str:
    interval = median_interval(values)
    return f"{interval[0]:.3f}–{interval[1]:.3f}" if interval else "—"


def workers(wrk: str, upstream: Upstream, args: argparse.Namespace) -> dict[str, Any]:
    """Req/s of the parsing proxy and the default configuration at each worker count."""
    out: dict[str, Any] = {}
    for busy in args.busy:
        with contextlib.ExitStack() as stack:
            running: dict[str, Running] = {}
            for count in args.workers:
                for name in (PARSING, DEFAULT):
                    spec, key = target_spec(name, upstream, count)
                    gateway = stack.enter_context(run_gateway(spec))
                    running[f"{name}×{count}"] = Running(gateway, key)
            warm(wrk, running, ("nonstream",), args.warmup, args.connections)
            stack.enter_context(busy_loops(busy))
            turns = {name: target.turn("nonstream") for name, target in running.items()}
            samples = in_turns(wrk, turns, args.rounds, args.seconds, args.connections)
        rps = {name: [s.rps for s in rows] for name, rows in samples.items()}
        print(f"busy loops beside: {busy} (load average {_load()})")
        print(f"{'workers':>7} {'parsing':>8} {'default':>8} {'÷ parsing':>9} {'interval':>12} "
              f"{'parsing ÷ 1':>11} {'default ÷ 1':>11}")  # fmt: skip
        one = args.workers[0]
        for count in args.workers:
            p, d = rps[f"{PARSING}×{count}"], rps[f"{DEFAULT}×{count}"]
            ratios = [a / b for a, b in zip(d, p, strict=True)]
            p_up = [a / b for a, b in zip(p, rps[f"{PARSING}×{one}"], strict=True)]
            d_up = [a / b for a, b in zip(d, rps[f"{DEFAULT}×{one}"], strict=True)]
            print(
                f"{count:>7} {statistics.median(p):>8,.0f} {statistics.median(d):>8,.0f} "
                f"{statistics.median(ratios):>9.3f} {_interval(ratios):>12} "
                f"{statistics.median(p_up):>11.2f} {statistics.median(d_up):>11.2f}"
            )
        out[f"busy{busy}"] = rps
    return out


def latency(wrk: str, upstream: Upstream, args: argparse.Namespace) -> dict[str, Any]:
    """p50/p99 of the parsing proxy and the default configuration at each connection count."""
    out: dict[str, Any] = {}
    with started(upstream, (PARSING, DEFAULT)) as running:
        warm(wrk, running, ("nonstream",), args.warmup, args.connections)
        turns = {name: target.turn("nonstream") for name, target in running.items()}
        print(f"{'conns':>5} {'parsing p50':>11} {'p99':>7} {'default p50':>11} {'p99':>7} "
              f"{'added p50':>9} {'added p99':>9}  (ms, medians over rounds)")  # fmt: skip
        for level in args.levels:
            samples = in_turns(wrk, turns, args.rounds, args.seconds, level)
            p, d = samples[PARSING], samples[DEFAULT]
            pairs = list(zip(p, d, strict=True))
            row = {
                "parsing_p50": statistics.median(s.p50_ms for s in p),
                "parsing_p99": statistics.median(s.p99_ms for s in p),
                "default_p50": statistics.median(s.p50_ms for s in d),
                "default_p99": statistics.median(s.p99_ms for s in d),
                "added_p50": statistics.median(b.p50_ms - a.p50_ms for a, b in pairs),
                "added_p99": statistics.median(b.p99_ms - a.p99_ms for a, b in pairs),
            }
            print(f"{level:>5} " + " ".join(f"{v:>9.3f}" for v in row.values()), flush=True)
            out[str(level)] = {"summary": row, "samples": {k: [vars(s) for s in v]
                               for k, v in samples.items()}}  # fmt: skip
    return out


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of ``points`` (x, y)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


@dataclass
class _Soaked:
    """One soaked gateway's samples: (requests served, MB) of all its processes and of the
    worker alone."""

    pid: int
    done: int = 0
    points: list[tuple[float, float]] = field(default_factory=list)
    worker: list[tuple[float, float]] = field(default_factory=list)

    def sample(self, served: int = 0) -> str:
        self.done += served
        self.points.append((float(self.done), rss_bytes(self.pid) / MB))
        self.worker.append((float(self.done), own_rss_bytes(self.pid) / MB))
        everything, worker = self.points[-1][1], self.worker[-1][1]
        return f"{self.done:>8,} requests  {everything:6.1f} MB (worker {worker:6.1f})"

    def summary(self, name: str) -> dict[str, Any]:
        first = max(1, len(self.points) // 5)
        figures: dict[str, Any] = {"points": self.points, "worker_points": self.worker}
        for label, points in (("all processes", self.points), ("the worker (serve)", self.worker)):
            per_10k = slope(points[first:]) * 10_000
            peak = max(y for _, y in points)
            print(f"{name}, {label}: {points[0][1]:.1f} MB after warm-up, {points[-1][1]:.1f} MB "
                  f"at the end, peak {peak:.1f} MB; slope after the first fifth {per_10k:+.3f} MB "
                  "per 10k requests")  # fmt: skip
            key = "worker_" if points is self.worker else ""
            figures.update({f"{key}slope_mb_per_10k": per_10k, f"{key}peak_mb": peak})
        return figures


def soak(wrk: str, upstream: Upstream, args: argparse.Namespace) -> dict[str, Any]:
    """RSS of the default configuration's processes while ``--requests`` are served (and of
    ``--baseline``'s, loaded in alternate segments)."""
    names = [DEFAULT] + ([DEFAULT + BASE] if args.baseline else [])
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        running: dict[str, Running] = {}
        for name in names:
            spec, key = target_spec(name, upstream, args.workers[0], args.baseline)
            running[name] = Running(stack.enter_context(run_gateway(spec)), key)
        warm(wrk, running, ("nonstream",), args.warmup, args.connections)
        soaked = {name: _Soaked(target.gateway.pid) for name, target in running.items()}
        for name, track in soaked.items():
            print(f"{name} after warm-up: {track.sample()}")
        turns = {name: target.turn("nonstream") for name, target in running.items()}
        while any(track.done < args.requests for track in soaked.values()):
            for name in [n for n in names if soaked[n].done < args.requests]:
                sample = load_turn(wrk, turns[name], args.connections, args.seconds)
                print(f"  {name:<13} {soaked[name].sample(sample.requests)}  {sample.rps:,.0f} "
                      "req/s", flush=True)  # fmt: skip
        for name, track in soaked.items():
            each = {pid: own_rss_bytes(pid) / MB for pid in descendants(track.pid)}
            print(f"{name} at the end, per process: "
                  + ", ".join(f"{p}: {mb:.1f} MB" for p, mb in each.items()))  # fmt: skip
            out[name] = {"per_process": each}
    for name, track in soaked.items():
        out[name].update(track.summary(name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _roles(top: int) -> dict[int, str]:
    """What each process of a served gateway is, from its command line: uvicorn runs one
    worker in the ``serve`` process itself, and spawns several (``multiprocessing``) under it."""
    lines = {pid: _cmdline(pid) for pid in descendants(top)}
    spawned = [pid for pid, line in lines.items() if "multiprocessing" in line]
    roles = {top: "supervisor (serve)" if spawned else "worker (serve)"}
    for pid, line in lines.items():
        if pid in spawned:
            roles[pid] = "worker"
        elif pid != top:
            roles[pid] = "ledger writer" if "ledger_child" in line else line[:60]
    return roles


def _imports(spec: GatewaySpec, baseline: Path | None) -> dict[str, Any]:
    """``bench.imports`` in a fresh process with ``spec``'s config, data dir and code."""
    config = spec.argv[spec.argv.index("--config") + 1]
    out = WORK_DIR / f"imports-{spec.name}.json"
    path = [str(baseline / "src")] if baseline else []
    env = {**os.environ, **spec.env, "MODELYARD_CONFIG": config}
    env["PYTHONPATH"] = os.pathsep.join([*path, str(REPO_DIR)])
    argv = [sys.executable, "-m", "bench.imports", "--top", "15", "--json", str(out)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"bench.imports failed: {done.stderr[-2000:]}")
    print(done.stdout, end="")
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def rss(wrk: str, upstream: Upstream, args: argparse.Namespace) -> dict[str, Any]:
    """RSS of a served default gateway after load, by process, and its imports' costs."""
    names = [DEFAULT] + ([DEFAULT + BASE] if args.baseline else [])
    specs = {name: target_spec(name, upstream, 1, args.baseline) for name in names}
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        running = {
            n: Running(stack.enter_context(run_gateway(s)), k) for n, (s, k) in specs.items()
        }
        for name, target in running.items():
            started_mb = own_rss_bytes(target.gateway.pid) / MB
            print(f"{name}: serve {started_mb:.1f} MB once ready, before any request")
            out[name] = {"ready_mb": started_mb}
        warm(wrk, running, ("nonstream", "stream"), args.warmup, args.connections)
        for mode in ("nonstream", "stream"):
            turns = {name: target.turn(mode) for name, target in running.items()}
            left = dict.fromkeys(turns, args.requests)
            while any(n > 0 for n in left.values()):
                for name in [n for n, count in left.items() if count > 0]:
                    sample = load_turn(wrk, turns[name], args.connections, args.seconds)
                    left[name] -= sample.requests
        for name, target in running.items():
            top = target.gateway.pid
            each = {pid: (role, own_rss_bytes(pid) / MB) for pid, role in _roles(top).items()}
            print(f"{name}: " + ", ".join(f"{role} {mb:.1f} MB" for role, mb in each.values()))
            out[name]["processes"] = {str(p): {"role": r, "mb": mb} for p, (r, mb) in each.items()}
    for name, (spec, _) in specs.items():
        print(f"imports of {name}:")
        out[name]["imports"] = _imports(spec, args.baseline if name.endswith(BASE) else None)
    return out


COMMANDS = {"workers": workers, "latency": latency, "soak": soak, "rss": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.machine", description=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    cpus = os.cpu_count() or 1
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, max(3, 2 * cpus)])
    parser.add_argument("--busy", type=int, nargs="+", default=[0], help="busy loops beside")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--requests", type=int, help="soak: requests to serve (100,000); rss: of each mode (5,000)"
    )
    parser.add_argument("--baseline", type=Path, help="rss, soak: another checkout beside")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 5_000 if args.command == "rss" else 100_000
    stop_on_sigterm()
    tools = ensure_tools()
    print(f"load average before: {_load()} on {cpus} cores", flush=True)
    try:
        with run_upstream(tools["nginx"]) as upstream:
            data = COMMANDS[args.command](tools["wrk"], upstream, args)
    except BenchError as exc:
        print(f"FAILED: {exc}")
        return 1
    print(f"load average after: {_load()}")
    print(f"results written to {write_result(f'machine-{args.command}', data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
