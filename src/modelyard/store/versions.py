"""Numbered versions of named specs, written once for the tables that keep them
(``deployment_versions``, ``agent_versions``): rows only ever appended, numbered 1..n per name.
What a spec means is the services' business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column


class VersionColumns:
    """The columns of a version table (a declarative mixin); each table adds its ``name``
    (its own length) and the unique (name, version) constraint."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class SpecVersion:
    """A recorded version, detached from the session."""

    name: str
    version: int
    spec: str
    spec_hash: str
    source: str
    created_at: datetime


RowT = TypeVar("RowT", bound=VersionColumns)


class VersionLog(Generic[RowT]):
    """Reads and appends the versions of one table within the caller's transaction."""

    def __init__(self, session: AsyncSession, row: type[RowT]) -> None:
        self._session = session
        self._row = row

    async def latest(self, name: str, source: str | None = None) -> SpecVersion | None:
        """The highest-numbered version of ``name`` (with that ``source``, when given)."""
        row = self._row
        query = select(row).where(row.name == name)
        if source is not None:
            query = query.where(row.source == source)
        found = (await self._session.scalars(query.order_by(row.version.desc()).limit(1))).first()
        return detach(found) if found else None

    async def get(self, name: str, version: int) -> SpecVersion | None:
        row = self._row
        query = select(row).where(row.name == name, row.version == version)
        found = (await self._session.scalars(query)).first()
        return detach(found) if found else None

    async def history(self, name: str) -> list[SpecVersion]:
        """Every version of ``name``, oldest first."""
        row = self._row
        query = select(row).where(row.name == name).order_by(row.version)
        return [detach(found) for found in await self._session.scalars(query)]

    async def add(self, name: str, spec: str, spec_hash: str, source: str, after: int) -> RowT:
        """Record version ``after + 1``, ``after`` being the newest number the caller read (0:
        none). If another writer appended since, the unique (name, version) constraint fires
        and the transaction raises ``VersionConflict``: the caller re-reads and retries. Taking
        the number from the caller's read, not from a fresh ``max()``, is what makes a decision
        based on stale reads fail instead of silently appending a duplicate."""
        added = self._row()
        added.name, added.version, added.spec = name, after + 1, spec
        added.spec_hash, added.source, added.created_at = spec_hash, source, datetime.now(UTC)
        self._session.add(added)
        await self._session.flush()
        return added


def detach(row: VersionColumns) -> SpecVersion:
    created = row.created_at
    if created.tzinfo is None:  # SQLite keeps no zone; every value was written in UTC
        created = created.replace(tzinfo=UTC)
    return SpecVersion(row.name, row.version, row.spec, row.spec_hash, row.source, created)
