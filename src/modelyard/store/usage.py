"""The usage ledger: one row per served request, appended in batches, queried grouped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base
from modelyard.store.ledger_child import Batch, new_rows, rollup, sqlite_params
from modelyard.store.usage_rollup import COLUMNS as ROLLUP_COLUMNS
from modelyard.store.usage_rollup import NAMED_UPSERT, SQLITE_UPSERT
from modelyard.tenancy.model import UsageFilter

# The status of a request its process was killed while serving, recorded at the next start
# from the ledger's journal (``store.journal``). Not an HTTP status a client saw (its
# connection broke); counted as an error, like every status from 400 up.
INTERRUPTED = 599


GroupBy = Literal["project", "key", "deployment", "model", "day", "provider", "status"]


class UsageRow(Base):
    __tablename__ = "usage_records"
    __table_args__ = (Index("uq_usage_records_request_id", "request_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Unique (revision 0013): a retried batch cannot record a request twice.
    request_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    day: Mapped[str] = mapped_column(String(10))  # UTC date, for grouping on any backend
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    deployment: Mapped[str | None] = mapped_column(String(128), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    stream: Mapped[bool] = mapped_column(Boolean)
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cached_input_tokens: Mapped[int] = mapped_column(Integer)
    cache_write_tokens: Mapped[int] = mapped_column(Integer)
    reasoning_tokens: Mapped[int] = mapped_column(Integer)
    cost_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    usage_reported: Mapped[bool] = mapped_column(Boolean)
    # The request this one was a step of (an agent's model or tool step); not indexed, like
    # request_id (revision 0006): no usage query filters by it, and every insert would pay.
    parent_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # The guardrails' verdicts (``guard:phase:action:category:score, ...``; revision 0008),
    # never the content they were about; NULL when no guard found anything.
    guardrails: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    # A learned or semantic strategy's decision and score (revision 0009), e.g.
    # ``learned:balanced:weak:0.213``; None for the other strategies.
    route: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A tool step's sizes (revision 0016): the arguments sent and the result (or error)
    # received, in UTF-8 bytes; NULL on every other row.
    bytes_in: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bytes_out: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


@dataclass(slots=True)  # not frozen: one is built per request, and frozen __init__ is slow
class UsageRecord:
    request_id: str
    created_at: datetime
    day: str
    project_id: str | None
    key_id: str | None
    endpoint: str
    deployment: str | None
    provider: str | None
    model: str | None
    status: int
    stream: bool
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_micros: int | None
    latency_ms: float
    ttft_ms: float | None
    attempts: int
    usage_reported: bool  # False: the upstream sent no usage and the tokens are an estimate
    parent_id: str | None = None  # the request this was a step of
    guardrails: str | None = None  # the guardrails' verdicts
    route: str | None = None  # the routing decision and score (learned / semantic strategies)
    bytes_in: int | None = None  # a tool step's arguments, in bytes (None: not a tool step)
    bytes_out: int | None = None  # a tool step's result or error, in bytes


# One ledger row as the meter hands it to the writer: ``UsageRecord``'s values in field order,
# except ``created_at``, which is seconds since the epoch. A plain tuple of atoms is the
# cheapest thing to build on the request path (and what the SQLite writer process unpickles
# without importing us), and the cyclic collector stops tracking it at its first pass, so rows
# waiting in the writer's queue do not lengthen every collection. Every position is typed, so
# mypy refuses a row whose columns are swapped (unless both have the same type: the tokens);
# ``tests/unit/store/test_ledger_row_types.py`` holds the alias to the record's fields.
LedgerRow = tuple[
    str,  # request_id
    float,  # created_at, seconds since the epoch
    str,  # day
    str | None,  # project_id
    str | None,  # key_id
    str,  # endpoint
    str | None,  # deployment
    str | None,  # provider
    str | None,  # model
    int,  # status
    bool,  # stream
    int,  # input_tokens
    int,  # output_tokens
    int,  # cached_input_tokens
    int,  # cache_write_tokens
    int,  # reasoning_tokens
    int | None,  # cost_micros
    float,  # latency_ms
    float | None,  # ttft_ms
    int,  # attempts
    bool,  # usage_reported
    str | None,  # parent_id
    str | None,  # guardrails
    str | None,  # route
    int | None,  # bytes_in
    int | None,  # bytes_out
]


def ledger_row(r: UsageRecord) -> LedgerRow:
    """A record as the row the writer takes (for callers that hold records, such as tests)."""
    return (
        r.request_id,
        r.created_at.timestamp(),
        r.day,
        r.project_id,
        r.key_id,
        r.endpoint,
        r.deployment,
        r.provider,
        r.model,
        r.status,
        r.stream,
        r.input_tokens,
        r.output_tokens,
        r.cached_input_tokens,
        r.cache_write_tokens,
        r.reasoning_tokens,
        r.cost_micros,
        r.latency_ms,
        r.ttft_ms,
        r.attempts,
        r.usage_reported,
        r.parent_id,
        r.guardrails,
        r.route,
        r.bytes_in,
        r.bytes_out,
    )


_COLUMNS = {
    "project": UsageRow.project_id,
    "key": UsageRow.key_id,
    "deployment": UsageRow.deployment,
    "model": UsageRow.model,
    "provider": UsageRow.provider,
    "day": UsageRow.day,
    "status": UsageRow.status,
}
_FIELDS = tuple(UsageRecord.__dataclass_fields__)
# Our own column names, never input.
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO usage_records ({', '.join(_FIELDS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_FIELDS))})"
)
_CREATED_AT = _FIELDS.index("created_at")
_REQUEST_ID = _FIELDS.index("request_id")


def sqlite_batch(rows: list[LedgerRow]) -> Batch:
    """``rows`` as the SQLite ledger writer's child takes them (see ``store.ledger_child``):
    the one-row INSERT, the column of the time to convert, the rows untouched, the rollup's
    upsert (the child sums the rows itself, off the server's event loop)."""
    return _SQLITE_INSERT, _CREATED_AT, rows, SQLITE_UPSERT, _REQUEST_ID


def _has_verdict(guard: str) -> Any:
    """Rows with a verdict of guard ``guard`` (``*``: of any guard)."""
    if guard == "*":
        return UsageRow.guardrails.is_not(None)
    column = UsageRow.guardrails
    return column.startswith(f"{guard}:", autoescape=True) | column.contains(
        f", {guard}:", autoescape=True
    )


async def _new_rows(conn: Any, rows: Sequence[LedgerRow]) -> list[LedgerRow]:
    ids = [row[_REQUEST_ID] for row in rows]
    found = await conn.execute(select(UsageRow.request_id).where(UsageRow.request_id.in_(ids)))
    return new_rows(list(rows), {rid for (rid,) in found}, _REQUEST_ID)


class UsageLedger:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, rows: Sequence[LedgerRow]) -> None:
        """Rows in the session's transaction, and their sums into the hourly rollup
        (``store.usage_rollup``): on SQLite one executemany of plain values each, as the
        server's own ledger writer runs them (``store.ledger_writer``, which goes around the
        session altogether); elsewhere one executemany through Core each."""
        if not rows:
            return
        conn = await self._session.connection()
        rows = await _new_rows(conn, rows)
        if not rows:
            return
        groups = rollup(list(rows))
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql(_SQLITE_INSERT, sqlite_params(_CREATED_AT, list(rows)))
            await conn.exec_driver_sql(SQLITE_UPSERT, groups)
            return
        # Imported here, where only PostgreSQL goes: the dialect package and its drivers' modules
        # are about 2 MB a SQLite gateway does not use.
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        values: list[dict[str, Any]] = []
        for row in rows:
            value: dict[str, Any] = dict(zip(_FIELDS, row, strict=True))
            value["created_at"] = datetime.fromtimestamp(row[1], UTC)  # LedgerRow's created_at
            values.append(value)
        # A row already there is a retried batch's: written once (revision 0013), and summed
        # into the rollup once (``rows`` are the new ones only, see above).
        await conn.execute(pg_insert(UsageRow).on_conflict_do_nothing(), values)
        await conn.execute(
            text(NAMED_UPSERT), [dict(zip(ROLLUP_COLUMNS, g, strict=True)) for g in groups]
        )

    def filtered(self, query: Any, where: UsageFilter) -> Any:
        """``query`` narrowed to the ledger rows ``where`` covers (for queries built
        elsewhere in the store, such as ``usage_series``)."""
        return self._where(query, where)

    def _where(self, query: Any, where: UsageFilter) -> Any:
        if where.project_id is not None:
            query = query.where(UsageRow.project_id == where.project_id)
        if where.key_id is not None:
            query = query.where(UsageRow.key_id == where.key_id)
        if where.deployment is not None:
            query = query.where(UsageRow.deployment == where.deployment)
        if where.since is not None:
            query = query.where(UsageRow.created_at >= where.since)
        if where.until is not None:
            query = query.where(UsageRow.created_at < where.until)
        if where.guardrail is not None:
            query = query.where(_has_verdict(where.guardrail))
        return query

    async def records(self, where: UsageFilter, limit: int = 1000) -> list[UsageRecord]:
        query = self._where(select(UsageRow), where).order_by(UsageRow.id).limit(limit)
        rows = (await self._session.scalars(query)).all()
        return [UsageRecord(**{f: getattr(r, f) for f in _FIELDS}) for r in rows]

    async def steps(
        self, parent_id: str, where: UsageFilter, limit: int = 1000
    ) -> list[UsageRecord]:
        """The rows whose ``parent_id`` is ``parent_id`` (a response's model and tool steps),
        in the order they were written. ``parent_id`` is not indexed (see the column): this is
        a scan narrowed by ``where``, for an operator's look at one request."""
        query = self._where(select(UsageRow), where).where(UsageRow.parent_id == parent_id)
        rows = (await self._session.scalars(query.order_by(UsageRow.id).limit(limit))).all()
        return [UsageRecord(**{f: getattr(r, f) for f in _FIELDS}) for r in rows]

    async def grouped(self, by: GroupBy, where: UsageFilter) -> list[dict[str, Any]]:
        """Totals per value of ``by``: requests, errors, tokens, cost."""
        column = _COLUMNS[by]
        query = select(
            column.label("group"),
            func.count().label("requests"),
            func.sum(func.cast(UsageRow.status >= 400, Integer)).label("errors"),
            func.sum(UsageRow.input_tokens).label("input_tokens"),
            func.sum(UsageRow.output_tokens).label("output_tokens"),
            func.sum(UsageRow.cached_input_tokens).label("cached_input_tokens"),
            func.sum(UsageRow.reasoning_tokens).label("reasoning_tokens"),
            func.sum(UsageRow.cost_micros).label("cost_micros"),
        )
        query = self._where(query, where).group_by(column).order_by(column)
        rows = (await self._session.execute(query)).all()
        return [
            {
                by: row.group,
                "requests": int(row.requests),
                "errors": int(row.errors or 0),
                "input_tokens": int(row.input_tokens or 0),
                "output_tokens": int(row.output_tokens or 0),
                "cached_input_tokens": int(row.cached_input_tokens or 0),
                "reasoning_tokens": int(row.reasoning_tokens or 0),
                "cost_micros": int(row.cost_micros or 0),
            }
            for row in rows
        ]
