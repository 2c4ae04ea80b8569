"""The ledger's rollup: per hour and per day, and per (project, key, deployment, model), the
requests, errors, tokens, cost and a latency histogram, kept by the ledger writer in the
transaction of the rows it sums (one upsert per group and batch, ``store.ledger_child.rollup``),
so the portal's usage pages read at most periods x groups rows, never the ledger's rows: a range
is read as its whole days' rows and the hours at either end (``store.usage_series``).

Every group is also kept with the key ``ALL_KEYS`` (summed over the keys), which the queries
that neither group nor filter by key read: far fewer rows where there are many keys. A missing
dimension is ``""`` (the key columns are not null, so two such rows meet in one group).
Periods are UTC: an hour (``grain`` ``h``) is ``YYYY-MM-DD HH``, a day (``d``) ``YYYY-MM-DD``.
The latency histogram's buckets are ``LATENCY_BOUNDS_MS`` (upper bounds, the last bucket
above 30 s): a percentile read from it is the upper bound of the bucket holding the nearest
rank.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import BigInteger, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base
from modelyard.store.ledger_child import ALL_KEYS, LATENCY_BOUNDS_MS, LATENCY_BUCKETS

__all__ = ["ALL_KEYS", "LATENCY_BOUNDS_MS", "LATENCY_BUCKETS", "UsageRollup"]

TABLE: Final = "usage_rollup"
GROUP_COLUMNS: Final = ("grain", "period", "project_id", "key_id", "deployment", "model")
SUM_COLUMNS: Final = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
    "cost_micros",
)
LATENCY_COLUMNS: Final = tuple(f"latency_{i:02d}" for i in range(LATENCY_BUCKETS))
COLUMNS: Final = GROUP_COLUMNS + SUM_COLUMNS + LATENCY_COLUMNS


class UsageRollup(Base):
    __tablename__ = TABLE
    # Clustered by period on SQLite (no rowid): a range of periods is one sequential read.
    __table_args__ = (PrimaryKeyConstraint(*GROUP_COLUMNS), {"sqlite_with_rowid": False})

    grain: Mapped[str] = mapped_column(String(1))
    period: Mapped[str] = mapped_column(String(13))
    project_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    deployment: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_input_tokens: Mapped[int] = mapped_column(BigInteger)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_micros: Mapped[int] = mapped_column(BigInteger)


for _name in LATENCY_COLUMNS:  # one column per histogram bucket, summable by the database
    setattr(UsageRollup, _name, mapped_column(_name, BigInteger, nullable=False))


def _upsert(values: str) -> str:
    added = ", ".join(f"{c} = {TABLE}.{c} + excluded.{c}" for c in SUM_COLUMNS + LATENCY_COLUMNS)
    return (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({values}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(GROUP_COLUMNS)}) DO UPDATE SET {added}"
    )


# Our own column names, never input; qmark for sqlite3, named for SQLAlchemy's text().
SQLITE_UPSERT: Final = _upsert(", ".join("?" * len(COLUMNS)))
NAMED_UPSERT: Final = _upsert(", ".join(f":{c}" for c in COLUMNS))


def hour_text(at: datetime) -> str:
    """The rollup's hour holding ``at``."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H")


def day_text(at: datetime) -> str:
    """The rollup's day holding ``at``."""
    return at.astimezone(UTC).strftime("%Y-%m-%d")


def last_hour_before(at: datetime) -> str:
    """The rollup's last hour that starts before ``at``."""
    return hour_text(at - timedelta(microseconds=1))


def percentile(counts: list[int], p100: int) -> float | None:
    """The ``p100``-th percentile (nearest rank) of a histogram: its bucket's upper bound
    (above the last bound: the last bound, a floor)."""
    total = sum(counts)
    if total == 0:
        return None
    rank, seen = (total * p100 + 99) // 100, 0
    for i, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return float(LATENCY_BOUNDS_MS[min(i, len(LATENCY_BOUNDS_MS) - 1)])
    return float(LATENCY_BOUNDS_MS[-1])  # pragma: no cover (seen reaches total)


def backfill_sql(dialect: str) -> str:
    """One INSERT ... SELECT summing the existing ledger rows into the rollup (run by its
    migration): per hour and per day, each per key and over every key as ``ALL_KEYS``."""
    if dialect == "sqlite":
        hour = "substr(created_at, 1, 13)"
    else:
        hour = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"
    lower = (None, *LATENCY_BOUNDS_MS)
    upper = (*LATENCY_BOUNDS_MS, None)
    buckets = []
    for low, high in zip(lower, upper, strict=True):
        tests = ([f"latency_ms > {low}"] if low is not None else []) + (
            [f"latency_ms <= {high}"] if high is not None else []
        )
        buckets.append(f"SUM(CASE WHEN {' AND '.join(tests)} THEN 1 ELSE 0 END)")
    sums = (
        "COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens), "
        "SUM(output_tokens), SUM(cached_input_tokens), SUM(reasoning_tokens), "
        "COALESCE(SUM(cost_micros), 0), " + ", ".join(buckets)
    )
    project, deployment, model = (
        f"COALESCE({c}, '')" for c in ("project_id", "deployment", "model")
    )
    selects = []
    # PostgreSQL refuses a constant in GROUP BY: the all-keys selects group without the key.
    for grain, period in (("h", hour), ("d", f"substr({hour}, 1, 10)")):
        for key, group in (("COALESCE(key_id, '')", True), (f"'{ALL_KEYS}'", False)):
            grouping = [period, project, *([key] if group else []), deployment, model]
            selects.append(
                f"SELECT '{grain}', {period}, {project}, {key}, {deployment}, {model}, "  # noqa: S608
                f"{sums} FROM usage_records GROUP BY {', '.join(grouping)}"
            )
    return f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) " + " UNION ALL ".join(selects)
