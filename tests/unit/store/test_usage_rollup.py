"""The hourly rollup equals a direct aggregation of the ledger's rows (randomised rows,
SQLite and PostgreSQL): written through the ledger in several batches, through the SQLite
ledger writer's child process, and filled from existing rows by its migration; rows on both
sides of hour boundaries."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.store import Store, open_store
from modelyard.store.ledger_writer import SqliteLedgerWriter, ledger_writer
from modelyard.store.migrate import alembic_config
from modelyard.store.usage import UsageLedger, UsageRecord, UsageRow, ledger_row
from modelyard.store.usage_rollup import COLUMNS, percentile
from modelyard.store.usage_series import grouped, series
from modelyard.tenancy.model import UsageFilter

BOUNDARY = datetime(2026, 3, 1, tzinfo=UTC)  # rows fall within 50 hours either side
# Stated upper bounds of the histogram, written out here rather than imported.
BOUNDS = (10, 25, 50, 100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000)


def _records(seed: int, count: int) -> list[UsageRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        at = BOUNDARY + timedelta(seconds=rng.uniform(-50 * 3600, 50 * 3600))
        if i % 7 == 0:  # a burst right at midnight
            at = BOUNDARY + timedelta(microseconds=rng.randint(-2_000_000, 2_000_000))
        latency = rng.choice([rng.uniform(0.5, 40_000), 10.0, 25.0, 30_000.0, 30_000.5])
        out.append(
            UsageRecord(
                f"r{seed}-{i}", at, at.date().isoformat(),
                rng.choice(["p1", "p2", None]), rng.choice(["k1", "k2", "k3", None]),
                "/v1/chat/completions", rng.choice(["chat", "code", None]), "fake",
                rng.choice(["gpt-4o", "claude", None]), rng.choice([200, 200, 429, 500]),
                False, rng.randint(0, 5000), rng.randint(0, 900), rng.randint(0, 100), 0,
                rng.randint(0, 50), rng.choice([None, rng.randint(0, 10_000)]), latency,
                None, 1, True,
            )
        )  # fmt: skip
    return out


def _bucket(latency: float) -> int:
    for i, bound in enumerate(BOUNDS):
        if latency <= bound:
            return i
    return len(BOUNDS)


def expected(records: Iterable[UsageRecord]) -> dict[tuple[str, ...], list[int]]:
    """The rollup computed directly from the rows, in Python, the slow obvious way."""
    out: dict[tuple[str, ...], list[int]] = {}
    for r in records:
        at = r.created_at.astimezone(UTC)
        for grain, period in (("h", at.strftime("%Y-%m-%d %H")), ("d", at.date().isoformat())):
            for key in (r.key_id or "", "*"):
                group = (grain, period, r.project_id or "", key, r.deployment or "", r.model or "")
                sums = out.setdefault(group, [0] * (7 + len(BOUNDS) + 1))
                values = (1, int(r.status >= 400), r.input_tokens, r.output_tokens,
                          r.cached_input_tokens, r.reasoning_tokens,
                          r.cost_micros or 0)  # fmt: skip
                for i, v in enumerate(values):
                    sums[i] += v
                sums[7 + _bucket(r.latency_ms)] += 1
    return out


def _found(rows: Iterable[Any]) -> dict[tuple[str, ...], list[int]]:
    return {tuple(r[:6]): [int(v) for v in r[6:]] for r in rows}


_SELECT = text(f"SELECT {', '.join(COLUMNS)} FROM usage_rollup")


async def _rollup(store: Store) -> dict[tuple[str, ...], list[int]]:
    async with store.transaction() as session:
        return _found((await session.execute(_SELECT)).all())


@pytest.mark.parametrize("seed", [1, 2])
async def test_rollup_equals_the_rows_written_in_batches(store: Store, seed: int) -> None:
    records = _records(seed, 400)
    rng = random.Random(seed)
    start = 0
    while start < len(records):  # batches of random sizes: groups span several batches
        size = rng.randint(1, 90)
        async with store.transaction() as session:
            await UsageLedger(session).append(
                [ledger_row(r) for r in records[start : start + size]]
            )
        start += size
    want = expected(records)
    assert await _rollup(store) == want
    assert sum(v[0] for k, v in want.items() if k[0] == "h" and k[3] == "*") == 400


async def test_rollup_queries_equal_the_ledgers_own_aggregation(store: Store) -> None:
    records = _records(3, 300)
    async with store.transaction() as session:
        await UsageLedger(session).append([ledger_row(r) for r in records])
    hour = timedelta(hours=1)
    ranges = (  # on whole hours, where the rollup's range is exact: whole days and hours
        (BOUNDARY - 37 * hour, None),
        (BOUNDARY - 37 * hour, BOUNDARY + 26 * hour),
        (BOUNDARY - 24 * hour, BOUNDARY + 24 * hour),
        (BOUNDARY + 2 * hour, BOUNDARY + 5 * hour),
        (None, BOUNDARY - 3 * hour),
    )
    filters = [UsageFilter(since=a, until=b) for a, b in ranges]
    filters.append(UsageFilter("p1", None, "chat", *ranges[0]))
    for where in filters:
        for by in ("model", "key", "deployment", "project"):
            async with store.transaction() as session:
                direct = await UsageLedger(session).grouped(by, where)
                rolled = await grouped(session, by, where)
            # Missing values sort last on PostgreSQL, first on SQLite: compare as sets.
            assert sorted(map(repr, rolled)) == sorted(map(repr, direct)), (by, where)
            assert len(rolled) == len(direct)
    async with store.transaction() as session:
        hours = await series(session, "hour", UsageFilter(key_id="k1"))
        days = await series(session, "day", UsageFilter())
    k1 = [r for r in records if r.key_id == "k1"]
    by_hour: dict[str, list[UsageRecord]] = {}
    for r in k1:
        by_hour.setdefault(r.created_at.strftime("%Y-%m-%d %H"), []).append(r)
    assert [p.bucket for p in hours] == sorted(by_hour)
    for point in hours:
        rows = by_hour[point.bucket]
        assert point.requests == len(rows)
        assert point.cost_micros == sum(r.cost_micros or 0 for r in rows)
        latencies = sorted(r.latency_ms for r in rows)
        rank50 = latencies[(len(rows) * 50 + 99) // 100 - 1]
        assert point.p50_ms == float(BOUNDS[min(_bucket(rank50), len(BOUNDS) - 1)])
    per_day: dict[str, int] = {}
    for r in records:
        per_day[r.day] = per_day.get(r.day, 0) + 1
    assert [(p.bucket, p.requests) for p in days] == sorted(per_day.items())
    since = BOUNDARY - 37 * hour
    async with store.transaction() as session:
        days = await series(session, "day", UsageFilter(since=since))
    per_day = {}
    for r in records:
        if r.created_at >= since:
            per_day[r.day] = per_day.get(r.day, 0) + 1
    assert [(p.bucket, p.requests) for p in days] == sorted(per_day.items())


def test_percentiles_are_the_upper_bound_of_the_nearest_ranks_bucket() -> None:
    counts = [0] * 16
    counts[0], counts[3], counts[15] = 10, 9, 1  # <=10 ms, <=100 ms, above 30 s
    assert percentile(counts, 50) == 10.0
    assert percentile(counts, 95) == 100.0
    assert percentile(counts, 100) == 30000.0  # above the last bound: the bound, a floor
    assert percentile([0] * 16, 50) is None


async def test_the_sqlite_writer_process_keeps_the_rollup(tmp_path: Any) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    writer = ledger_writer(store)
    assert isinstance(writer, SqliteLedgerWriter)
    records = _records(4, 500)
    try:
        for start in range(0, 500, 64):
            await writer.write([ledger_row(r) for r in records[start : start + 64]])
        assert await _rollup(store) == expected(records)
    finally:
        await writer.aclose()
        await store.aclose()


def _backfill(conn: Connection, records: list[UsageRecord]) -> list[Any]:
    command.upgrade(alembic_config(conn), "0010")
    # The columns of revision 0010 (a later revision's are not there yet: 0016's sizes).
    fields = [f for f in UsageRecord.__dataclass_fields__ if f not in ("bytes_in", "bytes_out")]
    values = [{f: getattr(r, f) for f in fields} for r in records]
    conn.execute(insert(UsageRow), values)
    command.upgrade(alembic_config(conn), "0015")
    return list(conn.execute(_SELECT).all())


async def test_the_migration_fills_the_rollup_from_existing_rows(store_url: str) -> None:
    records = _records(5, 300)
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            rows = await conn.run_sync(_backfill, records)
    finally:
        await engine.dispose()
    assert _found(rows) == expected(records)


async def test_a_retried_batch_counts_once_in_the_ledger_and_the_rollup(store: Store) -> None:
    """A batch written again (its commit was not acknowledged) and a batch repeating a row
    add nothing: the rollup sums the rows really inserted, as the ledger keeps them once."""
    records = _records(5, 120)
    rows = [ledger_row(r) for r in records]
    for batch in (rows[:80], rows[40:], rows[:1] * 3):
        async with store.transaction() as session:
            await UsageLedger(session).append(batch)
    assert await _rollup(store) == expected(records)


async def test_the_sqlite_writer_process_counts_a_retried_batch_once(tmp_path: Any) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    writer = ledger_writer(store)
    records = _records(6, 100)
    rows = [ledger_row(r) for r in records]
    try:
        for batch in (rows[:70], rows[30:], rows[:70]):
            await writer.write(batch)
        assert await _rollup(store) == expected(records)
    finally:
        await writer.aclose()
        await store.aclose()
