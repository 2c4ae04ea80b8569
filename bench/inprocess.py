"""Instructions per request through the app in process, for this tree and a baseline tree.

``python -m bench.inprocess --baseline PATH [--requests N] [--rounds R]`` compares the code of
this checkout with the code of another checkout (``PATH``: e.g. a ``git worktree`` of the
commit before a change) on the same machine, in the same run, the two trees alternating round
by round (ABBA). Each measurement runs the app's ASGI callable directly under ``valgrind
--tool=callgrind`` (and its child processes: the SQLite ledger writer is one), sending ``W``
warm-up requests and then ``N`` more; the same is done with the ``N`` left out, and the
difference of the two totals divided by ``N`` is the count per request. Server start-up, import
and warm-up cancel out; so does uvicorn, which both trees share.

What it answers: does a change add or remove work on the request path? Instruction counts repeat
to within about a percent whatever else the machine is doing (unlike requests/s, which move by
up to 30 % between back-to-back runs on the shared 2-core machines), but they do not see cache
misses or the HTTP server; ``bench.run`` and ``bench.cpu_per_request`` measure those.

Two configurations, as in ``bench.instructions``: *foundation* (no keys, no limits, no ledger)
and *metered* (a project key with RPM, TPM and budgets, prices, the ledger in SQLite). The
access log is off in both, so the count is the request path's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
TREE = HERE.parents[1]
CONFIGS = ("foundation", "metered")
GAUGE_INTERVAL_ENV = "MODELYARD_BENCH_GAUGE_INTERVAL_S"  # the inner driver's metrics flush period


def chat_scope(key: str = "") -> tuple[bytes, dict[str, Any]]:
    """A small non-streamed chat request to deployment ``bench`` as an ASGI HTTP scope: its
    body and its scope (``key``: sent as a bearer key when given)."""
    import orjson

    body = orjson.dumps({"model": "bench", "messages": [{"role": "user", "content": "Hello"}]})
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "extensions": _extensions(),
    }
    return body, scope


def _extensions() -> dict[str, Any]:
    """The scope's extensions as our server protocol gives them: a client's leaving is told to
    the request. A baseline checkout from before that notice watched ``receive`` instead."""
    try:
        from modelyard.server.protocol import LEAVE, Leaving
    except ImportError:
        return {}
    return {LEAVE: {"notice": Leaving()}}


async def _drive(config: dict[str, Any], total: int, key: str) -> None:
    """Inner process: ``total`` sequential non-streamed chat requests through the ASGI app."""

    from modelyard.config.loader import settings_from_data
    from modelyard.server.app import create_app

    store_url = config.pop("_store_url", None)
    tick = os.environ.get(GAUGE_INTERVAL_ENV)
    if tick:  # see ``bench.observability``: the per-second flush is not a per-request cost
        import modelyard.services.root as root_module

        root_module.GAUGE_INTERVAL_S = float(tick)
    app = create_app(settings_from_data(config), store_url=store_url)
    body, scope = chat_scope(key)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async with app.router.lifespan_context(app):
        for _ in range(total):
            sent: list[MutableMapping[str, Any]] = []

            async def send(
                message: MutableMapping[str, Any], sent: list[MutableMapping[str, Any]] = sent
            ) -> None:
                sent.append(message)

            await app(dict(scope), receive, send)
            if sent[0]["status"] != 200:
                raise SystemExit(f"request failed: {sent}")


def _inner(argv: list[str]) -> None:
    config_path, total, key = argv[0], int(argv[1]), argv[2]
    asyncio.run(_drive(json.loads(Path(config_path).read_text()), total, key))


def _prepare(tree: Path, name: str, upstream: Any, work: Path) -> tuple[Path, str]:
    """The config (and, metered, the seeded key) for one tree: seeded by that tree's own code,
    since the store's schema is the tree's."""
    from bench.gateways import UPSTREAM_MODEL, foundation_config, modelyard_config

    key = ""
    if name == "foundation":
        config: dict[str, Any] = foundation_config(upstream, access_log=False)
    else:
        seed = (
            "import asyncio, sys; from pathlib import Path; from bench.gateways import _seed_key;"
        )
        seed += " print(asyncio.run(_seed_key(Path(sys.argv[1]))))"
        done = subprocess.run(
            [sys.executable, "-c", seed, str(work)],
            check=True,
            capture_output=True,
            text=True,
            env=_env(tree, work),
            cwd=work,  # not this checkout: ``-c`` puts the working directory first on the path
        )
        key = done.stdout.strip().splitlines()[-1]
        config = modelyard_config(upstream, access_log=False)
        config["prices"] = {
            f"{p}/{UPSTREAM_MODEL}": {"input": 0.15, "output": 0.6} for p in ("fake", "fake_stream")
        }
        config["_store_url"] = f"sqlite+aiosqlite:///{work / 'modelyard.db'}"
    path = work / "config.json"
    path.write_text(json.dumps(config))
    return path, key


def _env(tree: Path, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_ADMIN_KEY"}
    env["PYTHONPATH"] = f"{tree / 'src'}{os.pathsep}{tree}"
    env["MODELYARD_DATA_DIR"] = str(work)
    return env


def _count(valgrind: str, tree: Path, work: Path, config: Path, key: str, total: int) -> int:
    out = work / "cg"
    out.mkdir(exist_ok=True)
    argv = [valgrind, "--tool=callgrind", "--vgdb=no", "--trace-children=yes"]
    argv += [f"--callgrind-out-file={out}/cg.%p", sys.executable, str(HERE), "--inner"]
    argv += [str(config), str(total), key]
    subprocess.run(argv, check=True, capture_output=True, env=_env(tree, work))
    instructions = 0
    for dump in out.iterdir():
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                instructions += int(line.split()[1])
        dump.unlink()
    return instructions


def measure(tree: Path, name: str, args: argparse.Namespace, tools: dict[str, str]) -> float:
    """Instructions per request of one configuration of one tree."""
    from bench.upstream import run_upstream

    work = Path(tempfile.mkdtemp(prefix=f"inprocess-{name}-"))
    try:
        with run_upstream(tools["nginx"]) as upstream:
            config, key = _prepare(tree, name, upstream, work)
            low = _count(tools["valgrind"], tree, work, config, key, args.warmup)
            high = _count(tools["valgrind"], tree, work, config, key, args.warmup + args.requests)
        return float(high - low) / int(args.requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if sys.argv[1:2] == ["--inner"]:
        _inner(sys.argv[2:])
        return
    from bench.tools import ensure_tools

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout's root")
    parser.add_argument("--requests", type=int, default=500, help="counted requests per run")
    parser.add_argument("--warmup", type=int, default=100, help="requests before counting")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds per configuration")
    args = parser.parse_args()
    tools = ensure_tools("valgrind")
    trees = {"baseline": args.baseline.resolve(), "this": TREE}
    for name in CONFIGS:
        seen: dict[str, list[float]] = {"baseline": [], "this": []}
        for round_ in range(args.rounds):
            order = ("baseline", "this") if round_ % 2 == 0 else ("this", "baseline")
            for label in order:
                per = measure(trees[label], name, args, tools)
                seen[label].append(per)
                print(f"{name:<10} {label:<8} {per / 1000:9.1f} k instructions/request", flush=True)
        base, this = statistics.median(seen["baseline"]), statistics.median(seen["this"])
        print(f"{name:<10} this / baseline = {this / base:.3f} (medians of {args.rounds})\n")


if __name__ == "__main__":
    main()
