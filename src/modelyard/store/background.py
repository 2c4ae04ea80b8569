"""The ``background_runs`` aggregate: one row per background response while it runs and after.

``body`` is the latest ``Response`` object written (queued, then the final one), ``events``
the run's stream events once it has ended (SSE text, for ``?stream=true`` replays), ``runner``
the process that runs it (``host/serve pid/worker pid``), so a restarted gateway can tell its
dead runs from a live sibling's. JSON the store never reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base

UNFINISHED = ("queued", "in_progress")


class BackgroundRunRow(Base):
    __tablename__ = "background_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)
    runner: Mapped[str] = mapped_column(String(128))
    body: Mapped[str] = mapped_column(Text)
    events: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class BackgroundRun:
    id: str
    owner: str
    status: str
    runner: str
    body: str
    events: str | None


class BackgroundRuns:
    """Within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(self, run: BackgroundRun) -> None:
        self._session.add(
            BackgroundRunRow(
                id=run.id,
                owner=run.owner,
                status=run.status,
                runner=run.runner,
                body=run.body,
                events=run.events,
                updated_at=datetime.now(UTC),
            )
        )
        await self._session.flush()

    async def finish(self, run_id: str, status: str, body: str, events: str | None) -> None:
        await self._session.execute(
            update(BackgroundRunRow)
            .where(BackgroundRunRow.id == run_id)
            .values(status=status, body=body, events=events, updated_at=datetime.now(UTC))
        )

    async def get(self, run_id: str, owner: str) -> BackgroundRun | None:
        row = await self._session.get(BackgroundRunRow, run_id)
        if row is None or row.owner != owner:
            return None
        return _detach(row)

    async def unfinished(self) -> list[BackgroundRun]:
        query = select(BackgroundRunRow).where(BackgroundRunRow.status.in_(UNFINISHED))
        return [_detach(row) for row in await self._session.scalars(query)]


def _detach(row: BackgroundRunRow) -> BackgroundRun:
    return BackgroundRun(row.id, row.owner, row.status, row.runner, row.body, row.events)
