"""The gateway's own work per request, in Python bytecodes, against the parsing proxy's.

``python -m bench.pathcost [--requests N] [--baseline PATH]`` sends ``N`` chat requests (after
30 unmeasured ones) through each ASGI app in process, non-streaming and streaming, against the
nginx fake upstream, and counts the bytecodes the interpreter executes (``sys.settrace``
opcode events) per request:

- ``parsing``: the parsing proxy of ``bench/proxies.py`` (orjson in and out, the least a
  metering gateway must do), on the same Starlette and aiohttp stack;
- ``foundation``, ``default``, ``metered``: Modelyard's configurations as ``bench.ceilings``
  starts them (``default``: the ledger in SQLite and the access log, written to /dev/null
  through the handler ``modelyard serve`` sets; ``metered``: a project key with limits and
  budgets, prices, the ledger).

The frames of the pure-Python event loop (``asyncio``, ``selectors``), which the driver runs
and a served worker does not (uvloop), are left out, and so is the store's resync (a query
twice a second, which a traced run's slow seconds would otherwise spread over few requests).
Each figure is also printed as a ratio of the parsing proxy's. Bytecodes do not move with the
machine's load, so a change's effect on the request path shows here in one short run; they do
not see C code (uvicorn's parser, orjson, the sockets), which the proxy and the gateway share:
the requests/s ratios of ``bench.ceilings`` include it. With ``--baseline``, another checkout
(e.g. a worktree of the commit before a change) is measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.opcodes import opcodes

HERE = Path(__file__).resolve()
TREE = HERE.parents[1]
TARGETS = ("parsing", "foundation", "default", "metered")
_LOOP_FILES = ("/asyncio/", "/selectors.py", "/_weakrefset.py")


def _body(stream: bool) -> bytes:
    import orjson

    model = "bench-stream" if stream else "bench"
    doc: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
    if stream:
        doc["stream"] = True
    return orjson.dumps(doc)


async def _app(target: str, origin: str, work: Path) -> tuple[Any, str]:
    """The ASGI app of ``target`` and the key to send (empty: none)."""
    if target == "parsing":
        from bench.proxies import create_app as proxy_app

        return proxy_app("parsing", origin), ""
    import modelyard.services.root as root_module
    from bench.gateways import UPSTREAM_MODEL, _seed_key, foundation_config, modelyard_config
    from bench.upstream import Upstream
    from modelyard.config.loader import settings_from_data
    from modelyard.observability.logs import configure_logging
    from modelyard.server.app import create_app

    root_module.GAUGE_INTERVAL_S = 3600.0
    upstream = Upstream(port=int(origin.rsplit(":", 1)[1]), pid=0)
    key, store_url = "", None
    if target == "foundation":
        config = foundation_config(upstream, access_log=False)
    else:
        config = modelyard_config(upstream)
        store_url = f"sqlite+aiosqlite:///{work / 'modelyard.db'}"
    if target != "foundation":  # the store's twice-a-second resync is not a request's work
        store: dict[str, object] = dict(config.get("store") or {})  # type: ignore[call-overload]
        config["store"] = {**store, "resync_interval_s": 3600}
    if target == "metered":
        key = await _seed_key(work)
        config["prices"] = {
            f"{p}/{UPSTREAM_MODEL}": {"input": 0.15, "output": 0.6} for p in ("fake", "fake_stream")
        }
    if target != "foundation":  # the access log goes where `modelyard serve` sends it
        configure_logging("info")
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
    return create_app(settings_from_data(config), store_url=store_url), key


def requester(
    app: Any, scope: dict[str, Any], body: bytes, label: str
) -> Callable[[], Awaitable[None]]:
    """One request through ``app``, as a client that sends ``body`` and stays until the answer
    is over (a stream's disconnect watch waits, as it would on a live connection); a status
    other than 200 ends the benchmark."""
    forever = asyncio.Event()

    async def one() -> None:
        sent: list[dict[str, Any]] = []
        given = False

        async def receive() -> dict[str, Any]:
            nonlocal given
            if given:
                await forever.wait()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(dict(scope), receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"{label}: request failed: {sent}")

    return one


async def _count(target: str, origin: str, stream: bool, warmup: int, requests: int) -> float:
    """Inner process: bytecodes per request of ``target``, the event loop's left out."""
    from bench.inprocess import chat_scope

    work = Path(tempfile.mkdtemp(prefix=f"pathcost-{target}-"))
    os.environ["MODELYARD_DATA_DIR"] = str(work)  # the journal too, not the user's data dir
    app, key = await _app(target, origin, work)
    body = _body(stream)
    _, scope = chat_scope(key)
    scope["headers"] = [h for h in scope["headers"] if h[0] != b"content-length"]
    scope["headers"].append((b"content-length", str(len(body)).encode()))
    one = requester(app, scope, body, target)

    async with app.router.lifespan_context(app):
        for _ in range(warmup):
            await one()
        with opcodes() as counts:
            for _ in range(requests):
                await one()
    own = sum(n for name, n in counts.items() if not any(part in name for part in _LOOP_FILES))
    return own / requests


def measure(tree: Path, target: str, origin: str, stream: bool, requests: int) -> float:
    """Bytecodes per request of ``target`` in ``tree``'s code (a subprocess of its own)."""
    # ``tree``'s gateway, this checkout's benchmark code (the proxies, the drivers)
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{TREE}")
    argv = [sys.executable, str(HERE), "--inner", target, origin, str(int(stream)), str(requests)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=env, cwd=tree)
    return float(done.stdout.strip().splitlines()[-1])


def run(trees: dict[str, Path], requests: int, origin: str) -> dict[str, dict[str, float]]:
    """``{"<tree> <mode>": {target: bytecodes per request}}``, printed as they come."""
    results: dict[str, dict[str, float]] = {}
    for mode in ("nonstream", "stream"):
        for label, tree in trees.items():
            row = {t: measure(tree, t, origin, mode == "stream", requests) for t in TARGETS}
            results[f"{label} {mode}"] = row
            cells = "  ".join(
                f"{t} {row[t]:>7,.0f} ({row[t] / row['parsing']:.2f})" for t in TARGETS
            )
            print(f"{label:<9}{mode:<10} {cells}", flush=True)
    return results


def main() -> None:
    from bench.procs import WORK_DIR
    from bench.tools import ensure_tools
    from bench.upstream import run_upstream

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure too")
    args = parser.parse_args()
    trees = {"this": TREE, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    print("bytecodes per request, the event loop's left out (÷ the parsing proxy's)")
    with run_upstream(ensure_tools()["nginx"]) as upstream:
        origin = upstream.base_url.rsplit("/v1", 1)[0]
        results = run(trees, args.requests, origin)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    (WORK_DIR / "pathcost.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        target, origin, stream, requests = sys.argv[2:6]
        print(asyncio.run(_count(target, origin, stream == "1", 30, int(requests))))
    else:
        main()
