"""The ledger over time: per hour or day, requests, errors, tokens, cost and latency
percentiles, all computed by the database (one grouped query and one windowed query), never
by reading rows into Python. Buckets are UTC (``YYYY-MM-DD`` or ``YYYY-MM-DD HH``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Integer, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.store.usage import UsageLedger, UsageRow
from modelyard.tenancy.model import UsageFilter

Bucket = Literal["day", "hour"]


@dataclass(frozen=True, slots=True)
class Point:
    bucket: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_micros: int
    p50_ms: float | None
    p95_ms: float | None


def _bucket(session: AsyncSession, bucket: Bucket) -> Any:
    if bucket == "day":
        return UsageRow.day
    if session.get_bind().dialect.name == "sqlite":  # times are stored as 'YYYY-MM-DD HH:MM:SS…'
        return func.substr(UsageRow.created_at, 1, 13)
    return func.to_char(func.timezone("UTC", UsageRow.created_at), "YYYY-MM-DD HH24")


async def series(session: AsyncSession, bucket: Bucket, where: UsageFilter) -> list[Point]:
    """One point per bucket with any request, oldest first."""
    ledger = UsageLedger(session)
    column = _bucket(session, bucket).label("bucket")
    totals = select(
        column,
        func.count().label("requests"),
        func.sum(func.cast(UsageRow.status >= 400, Integer)).label("errors"),
        func.sum(UsageRow.input_tokens).label("input_tokens"),
        func.sum(UsageRow.output_tokens).label("output_tokens"),
        func.sum(UsageRow.cost_micros).label("cost_micros"),
    )
    totals = ledger.filtered(totals, where).group_by(column).order_by(column)
    found = {row.bucket: row for row in (await session.execute(totals)).all()}
    percentiles = await _percentiles(session, bucket, where)
    return [
        Point(
            name,
            int(row.requests),
            int(row.errors or 0),
            int(row.input_tokens or 0),
            int(row.output_tokens or 0),
            int(row.cost_micros or 0),
            *percentiles.get(name, (None, None)),
        )
        for name, row in found.items()
    ]


async def _percentiles(
    session: AsyncSession, bucket: Bucket, where: UsageFilter
) -> dict[str, tuple[float | None, float | None]]:
    """p50 and p95 latency per bucket (nearest rank), by a window over each bucket's rows:
    the database ranks them and returns two rows per bucket."""
    column = _bucket(session, bucket)
    ranked = select(
        column.label("bucket"),
        UsageRow.latency_ms.label("latency"),
        func.row_number().over(partition_by=column, order_by=UsageRow.latency_ms).label("rank"),
        func.count().over(partition_by=column).label("size"),
    )
    inner = UsageLedger(session).filtered(ranked, where).subquery()
    # Nearest rank: ceil(p * n) = (p100 * n + 99) // 100 in integers.
    p50 = (inner.c.size * 50 + 99) // 100
    p95 = (inner.c.size * 95 + 99) // 100
    pick = select(inner.c.bucket, inner.c.latency, inner.c.rank, inner.c.size).where(
        (inner.c.rank == p50) | (inner.c.rank == p95)
    )
    out: dict[str, list[float | None]] = {}
    for row in (await session.execute(pick)).all():
        slot = out.setdefault(row.bucket, [None, None])
        if row.rank == (row.size * 50 + 99) // 100:
            slot[0] = float(row.latency)
        if row.rank == (row.size * 95 + 99) // 100:
            slot[1] = float(row.latency)
    return {k: (v[0], v[1]) for k, v in out.items()}
