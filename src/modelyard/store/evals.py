"""The evaluation aggregate: ``eval_runs`` (one row per run) and ``eval_results`` (one row per
graded call, unique per (run, case, deployment, repeat)).

Results are written one at a time as calls finish, so an interrupted run keeps what it did. A
result written again for the same key replaces the stored one only when the stored one is an
error (the retry of a failed call on resumption); a finished result is never overwritten, so
writing the same result twice is harmless. Which runs a caller may see is the callers' business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base

RunStatus = Literal["running", "done", "interrupted"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "done", "interrupted")
# Column sizes, so callers can refuse what would not fit before a run starts.
MAX_RUN_ID, MAX_DATASET, MAX_CASE_ID, MAX_DEPLOYMENT = 128, 256, 256, 128


class EvalRunRow(Base):
    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String(MAX_RUN_ID), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(MAX_DATASET))
    deployments: Mapped[list[str]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    # Who started the run (the key it called the server with), when known.
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class EvalResultRow(Base):
    __tablename__ = "eval_results"
    __table_args__ = (UniqueConstraint("run_id", "case_id", "deployment", "repeat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        String(MAX_RUN_ID), ForeignKey("eval_runs.id", name="fk_eval_results_run_id"), index=True
    )
    case_id: Mapped[str] = mapped_column(String(MAX_CASE_ID))
    deployment: Mapped[str] = mapped_column(String(MAX_DEPLOYMENT))
    repeat: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text)
    tool_calls: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_s: Mapped[float] = mapped_column(Float)
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cost_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The model declined (a refusal, recorded as ``output``): revision 0019.
    refused: Mapped[bool] = mapped_column(Boolean, server_default=false())


@dataclass(frozen=True, slots=True)
class EvalRun:
    """A run, detached from the session. ``report``: the final report (without per-case
    results, which are rows of their own), present once the run is done."""

    id: str
    dataset: str
    deployments: tuple[str, ...]
    options: dict[str, Any]
    status: str
    created_at: datetime
    project_id: str | None = None
    key_id: str | None = None
    finished_at: datetime | None = None
    report: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One graded call of a run."""

    run_id: str
    case_id: str
    deployment: str
    repeat: int
    score: float = 0.0
    passed: bool = False
    reason: str = ""
    output: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None
    latency_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int | None = None
    attempts: int = 1
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    refused: bool = False


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Narrows a listing: runs of one project, or started with one key (None: any)."""

    project_id: str | None = None
    key_id: str | None = None


_RESULT_FIELDS = tuple(EvalResult.__dataclass_fields__)
_KEY = ("run_id", "case_id", "deployment", "repeat")


def _insert_of(dialect: str) -> Callable[..., Any]:
    """The dialect's INSERT, which has ON CONFLICT. Imported here: the PostgreSQL dialect's
    package is about 2 MB that a SQLite gateway does not use."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _aware(value: datetime | None) -> datetime | None:
    # SQLite keeps no zone; every value was written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _run(row: EvalRunRow) -> EvalRun:
    created = _aware(row.created_at)
    assert created is not None
    return EvalRun(
        id=row.id,
        dataset=row.dataset,
        deployments=tuple(row.deployments),
        options=dict(row.options),
        status=row.status,
        created_at=created,
        project_id=row.project_id,
        key_id=row.key_id,
        finished_at=_aware(row.finished_at),
        report=row.report,
    )


def _result(row: EvalResultRow) -> EvalResult:
    values = {f: getattr(row, f) for f in _RESULT_FIELDS}
    values["created_at"] = _aware(row.created_at)
    values["tool_calls"] = list(row.tool_calls or [])
    return EvalResult(**values)


class EvalRuns:
    """Reads and writes runs and their results within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, run_id: str) -> EvalRun | None:
        row = await self._session.get(EvalRunRow, run_id)
        return _run(row) if row else None

    async def add(self, run: EvalRun) -> None:
        """Insert a new run; an existing id raises ``VersionConflict`` at commit."""
        values = asdict(run)
        values["deployments"] = list(run.deployments)
        self._session.add(EvalRunRow(**values))
        await self._session.flush()

    async def restart(
        self, run_id: str, deployments: Sequence[str], options: dict[str, Any]
    ) -> bool:
        """Mark an existing run as running again (resumption); False when there is none."""
        done = await self._session.execute(
            update(EvalRunRow)
            .where(EvalRunRow.id == run_id)
            .values(
                status="running",
                finished_at=None,
                deployments=list(deployments),
                options=options,
            )
        )
        return bool(getattr(done, "rowcount", 0))

    async def finish(
        self,
        run_id: str,
        status: RunStatus,
        at: datetime,
        report: dict[str, Any] | None = None,
    ) -> bool:
        """Record how the run ended (and its report); False when there is no such run."""
        values: dict[str, Any] = {"status": status, "finished_at": at}
        if report is not None:
            values["report"] = report
        done = await self._session.execute(
            update(EvalRunRow).where(EvalRunRow.id == run_id).values(**values)
        )
        return bool(getattr(done, "rowcount", 0))

    async def runs(
        self, where: RunFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[EvalRun]:
        """Runs, newest first."""
        query = self._filtered(select(EvalRunRow), where or RunFilter())
        query = query.order_by(EvalRunRow.created_at.desc(), EvalRunRow.id.desc())
        rows = await self._session.scalars(query.limit(limit).offset(offset))
        return [_run(r) for r in rows]

    async def count(self, where: RunFilter | None = None) -> int:
        query = self._filtered(select(func.count()).select_from(EvalRunRow), where or RunFilter())
        return int(await self._session.scalar(query) or 0)

    def _filtered(self, query: Any, where: RunFilter) -> Any:
        if where.project_id is not None:
            query = query.where(EvalRunRow.project_id == where.project_id)
        if where.key_id is not None:
            query = query.where(EvalRunRow.key_id == where.key_id)
        return query

    async def record(self, result: EvalResult) -> None:
        """Insert a result; on the same key, replace the stored one only if it is an error."""
        values = asdict(result)
        dialect = self._session.get_bind().dialect.name
        statement = _insert_of(dialect)(EvalResultRow).values(**values)
        replace = {k: statement.excluded[k] for k in values if k not in _KEY}
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=list(_KEY),
                set_=replace,
                where=EvalResultRow.error.is_not(None),
            )
        )

    async def results(
        self, run_id: str, *, limit: int | None = None, offset: int = 0
    ) -> list[EvalResult]:
        """A run's results in the order they were first recorded."""
        query = (
            select(EvalResultRow)
            .where(EvalResultRow.run_id == run_id)
            .order_by(EvalResultRow.id)
            .offset(offset)
        )
        if limit is not None:
            query = query.limit(limit)
        return [_result(r) for r in await self._session.scalars(query)]

    async def count_results(self, run_id: str) -> int:
        query = (
            select(func.count()).select_from(EvalResultRow).where(EvalResultRow.run_id == run_id)
        )
        return int(await self._session.scalar(query) or 0)

    async def result_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Number of results per run, for listings (runs without results are absent)."""
        if not run_ids:
            return {}
        query = (
            select(EvalResultRow.run_id, func.count())
            .where(EvalResultRow.run_id.in_(list(run_ids)))
            .group_by(EvalResultRow.run_id)
        )
        return {run_id: int(n) for run_id, n in (await self._session.execute(query)).all()}

    async def completed(self, run_id: str) -> set[tuple[str, str, int]]:
        """Keys (case, deployment, repeat) of the run's results that are not errors."""
        query = select(EvalResultRow.case_id, EvalResultRow.deployment, EvalResultRow.repeat).where(
            EvalResultRow.run_id == run_id, EvalResultRow.error.is_(None)
        )
        return {(c, d, int(r)) for c, d, r in (await self._session.execute(query)).all()}
