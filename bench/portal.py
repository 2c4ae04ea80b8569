"""The portal's pages at scale: 100 deployments, 1,000 keys, 1,000,000 ledger rows over 30 days
(and 20 evaluation runs), each page timed in process (the app, its SQLite store, no network),
p50 and p95 per page.

    .venv/bin/python -m bench.portal [--rows 1000000] [--requests 30]

The ledger is written in batches of 50,000 through the SQLite ledger writer's own
``write_batch`` (the rows and the hourly rollup's upserts, as the server writes them), then
``ANALYZE``d as a long-running store would be. Scratch files
go to ``bench/.work/portal/``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import sqlite3
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from modelyard.store import open_store
from modelyard.store.ledger_child import write_batch
from modelyard.store.tenancy import Tenancy
from modelyard.store.usage import LedgerRow, sqlite_batch
from modelyard.tenancy.keys import new_key
from modelyard.tenancy.model import ApiKey, Limits, Project

WORK = Path(__file__).resolve().parent / ".work" / "portal"
ADMIN_KEY = "bench-portal-operator-key"
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "llama-3.3-70b", "gemini-2.5-flash")


def settings(deployments: int) -> Settings:
    provider = {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1", "api_key": "x"}
    return Settings.model_validate(
        {
            "local": {"enabled": False},
            "providers": {"up": provider},
            "deployments": {
                f"dep-{i:03d}": {"targets": [{"provider": "up", "model": MODELS[i % 5]}]}
                for i in range(deployments)
            },
        }
    )


async def seed_tenancy(url: str, keys: int) -> str:
    """Ten projects and ``keys`` keys; the secret of an owner key of project p0."""
    store = await open_store(url)
    now = datetime.now(UTC)
    owner = ""
    try:
        async with store.transaction() as session:
            tenancy = Tenancy(session)
            for p in range(10):
                await tenancy.add_project(Project(f"p{p}", None, Limits(), now))
            for k in range(keys):
                fresh = new_key()
                role = "owner" if k == 0 else "member"
                await tenancy.add_key(
                    ApiKey(fresh.id, fresh.digest, role, f"p{k % 10}", f"k{k}", None,
                           Limits(rpm=600), None, None, now)
                )  # fmt: skip
                owner = owner or fresh.secret
    finally:
        await store.aclose()
    return owner


def seed_ledger(path: Path, rows: int, days: int = 30) -> float:
    """``rows`` ledger rows spread over the last ``days`` days, written as the server's ledger
    writer writes them (its child's ``write_batch``: the rows and the hourly rollup's upserts
    in one transaction per batch); the seconds it took."""
    started = time.perf_counter()
    rng = random.Random(7)
    now = time.time()
    db = sqlite3.connect(path, isolation_level=None)
    key_ids = [r[0] for r in db.execute("SELECT id FROM api_keys")]

    def batch(start: int, size: int) -> list[LedgerRow]:
        out: list[LedgerRow] = []
        for i in range(start, start + size):
            at = now - rng.random() * days * 86400
            out.append(
                (f"req-{i}", at, datetime.fromtimestamp(at, UTC).date().isoformat(),
                 f"p{i % 10}", key_ids[i % len(key_ids)], "/v1/chat/completions",
                 f"dep-{i % 100:03d}", "up", MODELS[i % 5], 500 if i % 50 == 0 else 200,
                 i % 2 == 0, rng.randint(10, 2000), rng.randint(5, 800), 0, 0, 0,
                 rng.randint(10, 5000), rng.uniform(50, 3000), rng.uniform(20, 500), 1, True,
                 None, None, None, None, None)
            )  # fmt: skip
        return out

    for start in range(0, rows, 50_000):
        write_batch(db, sqlite_batch(batch(start, min(50_000, rows - start))))
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - started


def sign_in(client: TestClient, key: str) -> None:
    form = client.get("/portal/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    answer = client.post("/portal/login", data={"csrf": token.group(1), "api_key": key})
    assert answer.status_code == 200, answer.text[:500]


def timed(client: TestClient, path: str, requests: int) -> tuple[float, float]:
    times = []
    for _ in range(requests + 2):  # the first two warm the caches up, unmeasured
        t0 = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"
    kept = sorted(times[2:])
    return statistics.median(kept), kept[min(len(kept) - 1, round(0.95 * (len(kept) - 1)))]


PAGES = (
    ("catalog", "/portal/catalog"),
    ("catalog search", "/portal/catalog?q=gpt-4o&capability=tools"),
    ("model", "/portal/model?id=gpt-4o"),
    ("deployments", "/portal/deployments"),
    ("deployment", "/portal/deployments/dep-042"),
    ("keys (1,000)", "/portal/keys"),
    ("usage 7d by model, per day", "/portal/usage"),
    ("usage 1d by key, per hour", "/portal/usage?range=1d&bucket=hour&by=key"),
    ("usage 30d by deployment", "/portal/usage?range=30d&by=deployment"),
    ("usage CSV, 1 day per hour and key", "/portal/usage.csv?range=1d"),
    ("playground", "/portal/playground"),
    ("evaluations", "/portal/evals"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    db_path = WORK / "store.db"
    url = f"sqlite+aiosqlite:///{db_path}"
    os.environ["MODELYARD_ADMIN_KEY"] = ADMIN_KEY
    owner = asyncio.run(seed_tenancy(url, args.keys))
    seconds = seed_ledger(db_path, args.rows)
    print(f"seeded {args.keys} keys and {args.rows:,} ledger rows in {seconds:.1f} s")
    with TestClient(create_app(settings(100), store_url=url)) as client:
        sign_in(client, ADMIN_KEY)
        print("| page (operator) | p50 ms | p95 ms |\n|---|---|---|")
        for name, path in PAGES:
            p50, p95 = timed(client, path, args.requests)
            print(f"| {name} | {p50:.1f} | {p95:.1f} |")
        client.cookies.clear()
        sign_in(client, owner)
        for name, path in (("usage 7d (owner of p0)", "/portal/usage"),
                           ("keys (owner of p0)", "/portal/keys")):  # fmt: skip
            p50, p95 = timed(client, path, args.requests)
            print(f"| {name} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
