"""Instructions per request, counted by callgrind: the metered overhead without the noise.

``python -m bench.instructions [--seconds S] [--connections N]`` runs each Modelyard
configuration (foundation, then metered) under ``valgrind --tool=callgrind`` with counting
switched off (its child processes too: the SQLite ledger writer is one, and its work
counts), warms it up, counts ``--idle`` seconds with no load (the periodic work: timers,
the key refresher, the ledger's flush ticks), then counts ``--seconds`` of wrk load. It prints
instructions per request with the idle rate subtracted, and metered ÷ foundation.

Instruction counts repeat to within a few percent whatever else the machine is doing, unlike
requests/s (back-to-back runs differ by up to 30 % on the shared 2-core machines). They do not
see cache misses, so a request's real cost grows faster than its count; use this to see whether
a change adds or removes work, and ``bench.cpu_per_request`` for the time it takes. Under
valgrind the server runs about fifty times slower, so each configuration takes about a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

from bench.gateways import (
    MODEL,
    GatewaySpec,
    modelyard_metered_spec,
    modelyard_spec,
    run_gateway,
)
from bench.load import BENCH_KEY, LoadSpec, run_wrk, write_script
from bench.procs import WORK_DIR, BenchError
from bench.tools import ensure_tools
from bench.upstream import run_upstream

OUT_DIR = WORK_DIR / "callgrind"


def _control(tools: dict[str, str], *args: str) -> None:
    control = str(Path(tools["valgrind"]).with_name("callgrind_control"))
    subprocess.run([control, *args], check=False, capture_output=True, timeout=120)


def _total(prefix: Path) -> int:
    """Instructions in the dumps ``prefix.*`` (their ``totals:`` lines)."""
    total = 0
    for dump in prefix.parent.glob(prefix.name + ".*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total


def count(
    name: str, spec: GatewaySpec, key: str, tools: dict[str, str], args: argparse.Namespace
) -> float:
    """Instructions per request of one configuration, the idle rate subtracted."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / name  # one file per process and dump: NAME.PID.1, NAME.PID.2
    for old in [*OUT_DIR.glob(f"{name}.*"), *OUT_DIR.glob(f"{name}-idle.*")]:
        old.unlink()
    argv = [
        tools["valgrind"],
        "--tool=callgrind",
        "--instr-atstart=no",
        "--trace-children=yes",
        f"--callgrind-out-file={out}.%p",
        sys.executable,
        *spec.argv,
    ]
    spec = dataclasses.replace(spec, argv=argv, ready_timeout=900)
    with run_gateway(spec) as gateway:
        script = write_script(MODEL, False, key)
        load = LoadSpec(gateway.chat_url, script, args.connections, 1, args.seconds, timeout_s=30)
        run_wrk(tools["wrk"], dataclasses.replace(load, seconds=5))  # warm-up, not counted
        _control(tools, "-i", "on")
        time.sleep(args.idle)
        _control(tools, "-d")  # dumps what the idle period counted, then counting restarts at 0
        _control(tools, "-z")
        result = run_wrk(tools["wrk"], load)
        _control(tools, "-i", "off")
        for dump in OUT_DIR.glob(f"{name}.*"):
            dump.rename(OUT_DIR / f"{name}-idle{dump.name.removeprefix(name)}")
        _control(tools, "-d")
        time.sleep(2)
    if result.failures or not result.requests:
        raise BenchError(f"{name}: {result.failures} failed of {result.requests} requests")
    idle_rate = _total(OUT_DIR / f"{name}-idle") / args.idle
    loaded = _total(out)
    per_request = (loaded - idle_rate * args.seconds) / result.requests
    print(
        f"{name:<10} {result.requests:>6} requests  idle {idle_rate / 1e6:,.1f} M instr/s  "
        f"{per_request / 1e3:,.0f} k instructions/request",
        flush=True,
    )
    return float(per_request)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--seconds", type=float, default=40.0, help="seconds of counted load")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of counted idle time")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="foundation with metrics on (traces off) instead of metered: the cost of metrics",
    )
    args = parser.parse_args(argv)
    tools = ensure_tools("valgrind")
    with run_upstream(tools["nginx"]) as upstream:
        foundation = count("foundation", modelyard_spec(upstream), BENCH_KEY, tools, args)
        if args.metrics:
            metrics: dict[str, object] = {"observability": {"metrics": {"enabled": True}}}
            spec = modelyard_spec(upstream, extra=metrics)
            other = count("metrics", spec, BENCH_KEY, tools, args)
        else:
            spec, key = modelyard_metered_spec(upstream)
            other = count("metered", spec, key, tools, args)
    name = "metrics" if args.metrics else "metered"
    print(f"{name} ÷ foundation instructions per request: {other / foundation:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
