"""``python -m bench.local_threads``: the embedded model's tokens/s by thread count, on a quiet
machine and next to busy processes (issue 17 #12: how many threads on a shared machine).

For each number of competing busy loops (``--busy 0 1``: ``python3 -c "while 1: pass"`` each)
and each thread count (``--threads 1 2``), llama.cpp is loaded in this process with that many
threads (``n_threads`` and ``n_threads_batch``), warmed up with one call, and timed over
``--runs`` non-streamed calls at temperature 0: completion tokens divided by the wall time of
the whole call (prompt included), median and worst. The busy loops run for the whole cell,
warm-up included, and are stopped before the next one. The CPU already busy before each cell
(other users of the machine) is printed next to it: on a shared machine, read the figures with
it. Results are written as JSON under ``bench/.work``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.local_tokens import N_CTX, Sample, _direct_call, model_path
from bench.procs import WORK_DIR, cpu_busy, stop_on_sigterm

BUSY_LOOP = "while 1: pass"


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes spinning on a core each, for as long as the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def measure(path: Path, threads: int, runs: int, max_tokens: int) -> list[Sample]:
    """One model load with ``threads`` threads; a warm-up call, then ``runs`` timed calls."""
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(path),
        n_ctx=N_CTX,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    try:
        _direct_call(llm, max_tokens, stream=False)
        return [_direct_call(llm, max_tokens, stream=False) for _ in range(runs)]
    finally:
        llm.close()


def _cell(path: Path, busy: int, threads: int, args: argparse.Namespace) -> dict[str, Any]:
    before = cpu_busy()
    with busy_loops(busy):
        samples = measure(path, threads, args.runs, args.max_tokens)
    rates = [s.rate for s in samples]
    cell = {
        "busy_loops": busy,
        "threads": threads,
        "cpu_busy_before": round(before, 3),
        "median_tokens_per_s": round(statistics.median(rates), 1),
        "worst_tokens_per_s": round(min(rates), 1),
        "tokens_per_s": [round(r, 1) for r in rates],
    }
    print(
        f"busy loops {busy}  threads {threads}  median {cell['median_tokens_per_s']:6.1f}  "
        f"worst {cell['worst_tokens_per_s']:6.1f} tokens/s  "
        f"(machine {before:.0%} busy before)",
        flush=True,
    )
    return cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_threads", description=__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--runs", type=int, default=3, help="timed calls per cell")
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    path = model_path()
    cells = [_cell(path, b, t, args) for b in args.busy for t in args.threads]
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    out = WORK_DIR / f"local-threads-{time.strftime('%Y%m%d-%H%M%S')}.json"
    settings = {"runs": args.runs, "max_tokens": args.max_tokens, "model": str(path)}
    out.write_text(json.dumps({"settings": settings, "cells": cells}, indent=2) + "\n")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
