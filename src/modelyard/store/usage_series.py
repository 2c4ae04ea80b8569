"""The ledger over time and grouped, for the portal's usage pages: read from the hourly rollup
(``store.usage_rollup``), so a page reads at most hours x groups rows, never the ledger's rows.
Per hour or day: requests, errors, tokens, cost, and p50/p95 latency from the rollup's
histogram (each the upper bound of the bucket holding the nearest rank). Buckets are UTC
(``YYYY-MM-DD`` or ``YYYY-MM-DD HH``); a range covers the whole hours it touches, read as
its whole days' rows and the hours at either end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.store.errors import StoreError
from modelyard.store.usage_rollup import (
    ALL_KEYS,
    LATENCY_COLUMNS,
    SUM_COLUMNS,
    UsageRollup,
    day_text,
    hour_text,
    last_hour_before,
    percentile,
)
from modelyard.tenancy.model import UsageFilter

Bucket = Literal["day", "hour"]
RollupGroup = Literal["project", "key", "deployment", "model"]
_GROUPS: Final = MappingProxyType(
    {
        "project": UsageRollup.project_id,
        "key": UsageRollup.key_id,
        "deployment": UsageRollup.deployment,
        "model": UsageRollup.model,
    }
)
_TABLE = UsageRollup.__table__
_DAY = timedelta(days=1)


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


def _where(query: Any, where: UsageFilter, *, by_key: bool, hours: bool = False) -> Any:
    """``query`` narrowed to the rollup rows ``where`` covers: the per-key rows when the
    query groups or filters by key, else the rows summed over every key (fewer); the range as
    its whole days' rows and the hours at either end (``hours``: as hours only)."""
    if where.guardrail is not None:
        raise StoreError("the usage rollup has no guardrail verdicts: ask the ledger")
    if where.key_id is not None:
        query = query.where(UsageRollup.key_id == where.key_id)
    elif by_key:
        query = query.where(UsageRollup.key_id != ALL_KEYS)
    else:
        query = query.where(UsageRollup.key_id == ALL_KEYS)
    if where.project_id is not None:
        query = query.where(UsageRollup.project_id == where.project_id)
    if where.deployment is not None:
        query = query.where(UsageRollup.deployment == where.deployment)
    return query.where(_periods(where.since, where.until, hours=hours))


def _hours(since: datetime | None, until: datetime | None) -> Any:
    """Hour rows of the whole hours that [since, until) touches."""
    test = [UsageRollup.grain == "h"]
    if since is not None:
        test.append(UsageRollup.period >= hour_text(since))
    if until is not None:
        test.append(UsageRollup.period <= last_hour_before(until))
    return and_(*test)


def _midnight(at: datetime) -> bool:
    return hour_text(at).endswith(" 00") and at.minute == at.second == at.microsecond == 0


def _periods(since: datetime | None, until: datetime | None, *, hours: bool) -> Any:
    """[since, until) as rollup rows: day rows for the whole days inside it, hour rows for
    the hours before the first and after the last (each ``YYYY-MM-DD HH`` sorts after its
    ``YYYY-MM-DD``, and before the next day's)."""
    if hours:
        return _hours(since, until)
    first = None if since is None else day_text(since if _midnight(since) else since + _DAY)
    end = None if until is None else day_text(until)  # the first day not whole inside
    if first is not None and end is not None and first >= end:
        return _hours(since, until)  # no whole day inside
    days = [UsageRollup.grain == "d"]
    parts = []
    if first is not None:
        days.append(UsageRollup.period >= first)
        if since is not None and not _midnight(since):
            parts.append(and_(_hours(since, None), UsageRollup.period < first))
    if end is not None:
        days.append(UsageRollup.period < end)
        if until is not None and not _midnight(until):
            parts.append(and_(_hours(None, until), UsageRollup.period >= end))
    return or_(and_(*days), *parts)


def _sums(names: tuple[str, ...]) -> list[Any]:
    return [func.sum(_TABLE.c[name]).label(name) for name in names]


async def series(session: AsyncSession, bucket: Bucket, where: UsageFilter) -> list[Point]:
    """One point per bucket with any request, oldest first."""
    hours = bucket == "hour"
    column = (UsageRollup.period if hours else func.substr(UsageRollup.period, 1, 10)).label(
        "bucket"
    )
    query = select(column, *_sums(SUM_COLUMNS + LATENCY_COLUMNS))
    query = _where(query, where, by_key=False, hours=hours).group_by(column).order_by(column)
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


HOURLY_FIELDS: Final = (
    "hour", "project_id", "key_id", "deployment", "model", *SUM_COLUMNS, "p50_ms", "p95_ms"
)  # fmt: skip


async def hourly(session: AsyncSession, where: UsageFilter, limit: int) -> list[tuple[Any, ...]]:
    """The rollup's hour rows (per key) of the range, oldest first, at most ``limit``:
    ``HOURLY_FIELDS`` each (a missing dimension: None; p50/p95 from the histogram)."""
    columns = [_TABLE.c[name] for name in ("period", "project_id", "key_id", "deployment", "model")]
    query = select(*columns, *(_TABLE.c[n] for n in SUM_COLUMNS + LATENCY_COLUMNS))
    query = _where(query, where, by_key=True, hours=True).order_by(*columns).limit(limit)
    out = []
    width = len(columns) + len(SUM_COLUMNS)
    for row in (await session.execute(query)).all():
        counts = [int(v) for v in row[width:]]
        dims = tuple(v or None for v in row[1 : len(columns)])
        sums = tuple(int(v) for v in row[len(columns) : width])
        out.append((row[0], *dims, *sums, percentile(counts, 50), percentile(counts, 95)))
    return out
