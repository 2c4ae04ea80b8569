"""Python bytecodes per request through the app in process: the cost of metrics, exactly.

``python -m bench.bytecodes [--requests N] [--baseline PATH] [--journal]`` sends ``N`` chat
requests (after 30 warm-up ones) through the ASGI app of this checkout (and of ``PATH``, another
checkout, when given), foundation config (no keys, no ledger, access log off), once with
observability off and once with metrics on (traces off), against the nginx fake upstream, and
counts the bytecodes the interpreter executes (``sys.settrace`` opcode events), the metrics'
flush to prometheus-client included (run once at the end of the counted requests, so its cost
is spread over them as the once-a-second flush spreads it over a second's requests).

Bytecode counts do not move with the machine's load (callgrind's instruction counts did, by up
to 3.5 % between runs of the same tree: dict layouts change with the hash seed); they do not see
the C code a bytecode runs, so they measure the Python work metrics add, which is what the
gateway's own code controls. Goal (issue 21): metrics on within 3 % of off.

``--journal`` compares instead the usage ledger (SQLite in a scratch data directory) with its
journal off and on (``store.journal``, issue 24): the Python work the journal adds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.opcodes import opcodes

HERE = Path(__file__).resolve()
TREE = HERE.parents[1]


async def _count(config: dict[str, Any], warmup: int, requests: int) -> float:
    """Inner process: bytecodes per request of ``requests`` calls through the app."""
    import modelyard.services.root as root_module
    from bench.inprocess import chat_scope
    from bench.pathcost import requester
    from modelyard.config.loader import settings_from_data
    from modelyard.server.app import create_app

    root_module.GAUGE_INTERVAL_S = 3600.0  # the flush is counted below, once, not per second
    store_url = None
    if config.get("store", {}).get("usage_ledger"):  # --journal: the ledger on SQLite
        import modelyard.store.sink as sink_module
        from modelyard.config.loader import data_dir
        from modelyard.store import database_url

        # Batches are written only when full (500 rows, more than a run sends): how many
        # ticks fall in the counted requests depends on the machine's speed, and each batch's
        # work would be spread over them unevenly; what is measured is the request path.
        sink_module.every = lambda interval_s: _on_wake_only  # type: ignore[attr-defined]
        store_url = database_url(None, data_dir())
    app = create_app(settings_from_data(config), store_url=store_url)
    body, scope = chat_scope()

    one = requester(app, scope, body, "bytecodes")

    async with app.router.lifespan_context(app):
        for _ in range(warmup):
            await one()
        observation = app.state.modelyard.observation
        if observation is not None and observation.metrics is not None:
            # The warm-up's flush: the label sets' series are made, as in a server's first
            # second, and the counted requests see the steady state.
            observation.metrics.flush()
        with opcodes() as counts:
            for _ in range(requests):
                await one()
            if observation is not None and observation.metrics is not None:
                observation.metrics.flush()
    return sum(counts.values()) / requests


async def _on_wake_only(wake: asyncio.Event) -> None:
    await wake.wait()


def _inner(argv: list[str]) -> None:
    config, warmup, requests = json.loads(argv[0]), int(argv[1]), int(argv[2])
    print(asyncio.run(_count(config, warmup, requests)))


def measure(tree: Path, config: dict[str, Any], requests: int) -> float:
    # ``tree``'s gateway, this checkout's benchmark code
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{TREE}")
    scratch = tempfile.TemporaryDirectory(prefix="modelyard-bytecodes-")
    env["MODELYARD_DATA_DIR"] = scratch.name  # a store (and journal) of its own each run
    argv = [sys.executable, str(HERE), "--inner", json.dumps(config), "30", str(requests)]
    with scratch:
        done = subprocess.run(argv, check=True, capture_output=True, text=True, env=env, cwd=tree)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench.gateways import foundation_config
    from bench.tools import ensure_tools
    from bench.upstream import run_upstream

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure too")
    parser.add_argument("--journal", action="store_true", help="ledger: journal off vs on")
    args = parser.parse_args()
    trees = [("this", TREE)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    with run_upstream(ensure_tools()["nginx"]) as upstream:
        off = foundation_config(upstream, access_log=False)
        on = {**off, "observability": {"metrics": {"enabled": True}}}
        what = "metrics"
        if args.journal:
            # No key or version polls among the counted requests (each is Python work).
            store = {"usage_ledger": True, "resync_interval_s": 3600}
            off = {**off, "store": {**store, "journal": False}}
            on = {**off, "store": {**store, "journal": True}}
            what = "journal"
        for name, tree in trees:
            a, b = measure(tree, off, args.requests), measure(tree, on, args.requests)
            print(f"{name:<9} off {a:>9,.0f}  {what} {b:>9,.0f}  added {b - a:>6,.0f}  "
                  f"÷ off {b / a:.3f}")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        _inner(sys.argv[2:])
    else:
        main()
