"""Where a served request's time goes: flame graphs of a loaded gateway, by py-spy.

``python -m bench.profile [--targets default metered] [--seconds S] [--out DIR]`` starts the
nginx fake upstream and each target as ``bench.ceilings`` does (one worker), loads it with
``wrk`` at 32 connections, non-streaming then streaming, and meanwhile samples the serving
process with py-spy (100 samples a second, idle frames left out). It writes one SVG flame
graph per target and mode, ``<out>/<date>-<target>-<mode>.svg`` (default out:
``bench/flamegraphs``), and prints the share of samples in each top-level package (the frame
where a sample's time was spent), so the graphs can be read and compared in text too.

Samples of a coroutine start at the frame the event loop resumed, not at the request's
entry: read the leaves (where time is spent) rather than the towers.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.ceilings import Running, started, warm
from bench.load import LoadSpec, run_wrk
from bench.procs import BENCH_DIR, WORK_DIR, BenchError, stop_on_sigterm
from bench.tools import ensure_tools
from bench.upstream import run_upstream

OUT = BENCH_DIR / "flamegraphs"
RATE = 100  # samples per second: enough for a 20 s run, light on a 2-core machine


def py_spy() -> str:
    """The py-spy next to the running interpreter (the project's dev group installs it)."""
    found = Path(sys.executable).parent / "py-spy"
    if found.is_file():
        return str(found)
    on_path = shutil.which("py-spy")
    if on_path is None:
        raise BenchError("py-spy is not installed: run `make install`")
    return on_path


def record(target: Running, mode: str, seconds: float, wrk: str, stem: Path) -> Path:
    """Sample ``target`` under load: the SVG, and the raw stacks beside it in ``bench/.work``."""
    turn = target.turn(mode)
    raw = WORK_DIR / "profiles" / f"{stem.name}.txt"
    raw.parent.mkdir(parents=True, exist_ok=True)
    svg = stem.with_suffix(".svg")
    argv = [py_spy(), "record", "--rate", str(RATE), "--pid", str(target.gateway.pid)]
    argv += ["--duration", str(int(seconds)), "--nonblocking"]
    with (
        subprocess.Popen([*argv, "--format", "flamegraph", "--output", str(svg)]) as graph,
        subprocess.Popen([*argv, "--format", "raw", "--output", str(raw)]) as stacks,
    ):
        run_wrk(wrk, LoadSpec(turn.url, turn.script, 32, 2, seconds))
        for sampler in (graph, stacks):
            if sampler.wait() != 0:
                raise BenchError(f"py-spy ended with status {sampler.returncode}")
    return raw


def shares(raw: Path) -> list[tuple[str, float]]:
    """The share of samples whose leaf frame is in each top-level package."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        where = leaf.partition(" (")[2].rsplit(":", 1)[0]
        parts = Path(where).parts  # py-spy names a file from its package: aiohttp/client.py
        if "modelyard" in parts:
            package = "modelyard/" + "/".join(parts[parts.index("modelyard") + 1 :][:1])
        elif len(parts) > 1:
            package = parts[0] if "site-packages" not in parts else parts[-2]
        else:
            package = where or "?"
        counts[package] += int(n)
    total = sum(counts.values()) or 1
    return [(name, n / total) for name, n in counts.most_common(12)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--targets", nargs="+", default=["default", "metered"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    tools = ensure_tools()
    args.out.mkdir(parents=True, exist_ok=True)
    day = time.strftime("%Y-%m-%d")
    with run_upstream(tools["nginx"]) as upstream, started(upstream, args.targets) as running:
        warm(tools["wrk"], running, ("nonstream", "stream"), 2.0)
        for name, target in running.items():
            for mode in ("nonstream", "stream"):
                stem = args.out / f"{day}-{name}-{mode}"
                raw = record(target, mode, args.seconds, tools["wrk"], stem)
                top = ", ".join(f"{pkg} {share:.0%}" for pkg, share in shares(raw))
                print(f"{name} {mode}: {stem.with_suffix('.svg')}\n  leaves: {top}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
