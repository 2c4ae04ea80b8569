"""The ledger over time and grouped, for the portal's usage pages: read from the hourly rollup
(``store.usage_rollup``), so a page reads at most hours x groups rows, never the ledger's rows.
Per hour or day: requests, errors, tokens, cost, and p50/p95 latency from the rollup's
histogram (each the upper bound of the bucket holding the nearest rank). Buckets are UTC
(``YYYY-MM-DD`` or ``YYYY-MM-DD HH``); a range covers the whole hours it touches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.store.errors import StoreError
from modelyard.store.usage_rollup import (
    ALL_KEYS,
    LATENCY_COLUMNS,
    SUM_COLUMNS,
    UsageHourly,
    hour_text,
    last_hour_before,
    percentile,
)
from modelyard.tenancy.model import UsageFilter

Bucket = Literal["day", "hour"]
RollupGroup = Literal["project", "key", "deployment", "model"]
_GROUPS = {
    "project": UsageHourly.project_id,
    "key": UsageHourly.key_id,
    "deployment": UsageHourly.deployment,
    "model": UsageHourly.model,
}
_TABLE = UsageHourly.__table__


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


def _where(query: Any, where: UsageFilter, *, by_key: bool) -> Any:
    """``query`` narrowed to the rollup rows ``where`` covers: the per-key rows when the
    query groups or filters by key, else the rows summed over every key (fewer)."""
    if where.guardrail is not None:
        raise StoreError("the usage rollup has no guardrail verdicts: ask the ledger")
    if where.key_id is not None:
        query = query.where(UsageHourly.key_id == where.key_id)
    elif by_key:
        query = query.where(UsageHourly.key_id != ALL_KEYS)
    else:
        query = query.where(UsageHourly.key_id == ALL_KEYS)
    if where.project_id is not None:
        query = query.where(UsageHourly.project_id == where.project_id)
    if where.deployment is not None:
        query = query.where(UsageHourly.deployment == where.deployment)
    if where.since is not None:
        query = query.where(UsageHourly.hour >= hour_text(where.since))
    if where.until is not None:
        query = query.where(UsageHourly.hour <= last_hour_before(where.until))
    return query


def _sums(names: tuple[str, ...]) -> list[Any]:
    return [func.sum(_TABLE.c[name]).label(name) for name in names]


async def series(session: AsyncSession, bucket: Bucket, where: UsageFilter) -> list[Point]:
    """One point per bucket with any request, oldest first."""
    column = (UsageHourly.hour if bucket == "hour" else func.substr(UsageHourly.hour, 1, 10)).label(
        "bucket"
    )
    query = select(column, *_sums(SUM_COLUMNS + LATENCY_COLUMNS))
    query = _where(query, where, by_key=False).group_by(column).order_by(column)
    points = []
    for row in (await session.execute(query)).all():
        counts = [int(getattr(row, name)) for name in LATENCY_COLUMNS]
        points.append(
            Point(
                row.bucket,
                int(row.requests),
                int(row.errors),
                int(row.input_tokens),
                int(row.output_tokens),
                int(row.cost_micros),
                percentile(counts, 50),
                percentile(counts, 95),
            )
        )
    return points


async def grouped(
    session: AsyncSession, by: RollupGroup, where: UsageFilter
) -> list[dict[str, Any]]:
    """Totals per value of ``by`` (``UsageLedger.grouped``'s shape: a missing value is None)."""
    column = _GROUPS[by]
    query = select(column.label("group"), *_sums(SUM_COLUMNS))
    query = _where(query, where, by_key=by == "key").group_by(column).order_by(column)
    return [
        {
            by: row.group or None,
            "requests": int(row.requests),
            "errors": int(row.errors),
            "input_tokens": int(row.input_tokens),
            "output_tokens": int(row.output_tokens),
            "cached_input_tokens": int(row.cached_input_tokens),
            "reasoning_tokens": int(row.reasoning_tokens),
            "cost_micros": int(row.cost_micros),
        }
        for row in (await session.execute(query)).all()
    ]
