"""The ``deployment_versions`` aggregate: every recorded spec of a deployment, numbered 1..n
per name. Rows are only ever appended; what a version means is the services' business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base
from modelyard.store.changes import DEPLOYMENTS, announce


class DeploymentVersionRow(Base):
    __tablename__ = "deployment_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class DeploymentVersion:
    """A recorded version, detached from the session."""

    name: str
    version: int
    spec: str
    spec_hash: str
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewVersion:
    name: str
    spec: str
    spec_hash: str
    source: str


class DeploymentVersions:
    """Reads and appends versions within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def latest(self, name: str, source: str | None = None) -> DeploymentVersion | None:
        """The highest-numbered version of ``name`` (with that ``source``, when given)."""
        query = select(DeploymentVersionRow).where(DeploymentVersionRow.name == name)
        if source is not None:
            query = query.where(DeploymentVersionRow.source == source)
        query = query.order_by(DeploymentVersionRow.version.desc()).limit(1)
        row = (await self._session.scalars(query)).first()
        return _detach(row) if row else None

    async def get(self, name: str, version: int) -> DeploymentVersion | None:
        query = select(DeploymentVersionRow).where(
            DeploymentVersionRow.name == name, DeploymentVersionRow.version == version
        )
        row = (await self._session.scalars(query)).first()
        return _detach(row) if row else None

    async def head(self) -> int:
        """The newest version's row id over every deployment (0: none): it moves whenever a
        version is recorded, so a replica polls this one number."""
        return int(await self._session.scalar(select(func.max(DeploymentVersionRow.id))) or 0)

    async def history(self, name: str) -> list[DeploymentVersion]:
        """Every version of ``name``, oldest first."""
        query = (
            select(DeploymentVersionRow)
            .where(DeploymentVersionRow.name == name)
            .order_by(DeploymentVersionRow.version)
        )
        return [_detach(row) for row in await self._session.scalars(query)]

    async def append(self, new: NewVersion, after: int) -> DeploymentVersion:
        """Record ``new`` as version ``after + 1``, ``after`` being the newest number the caller
        read (0: none). If another writer appended since, the unique (name, version) constraint
        fires and the transaction raises ``VersionConflict``: the caller re-reads and retries.
        Taking the number from the caller's read, not from a fresh ``max()``, is what makes a
        decision based on stale reads fail instead of silently appending a duplicate."""
        row = DeploymentVersionRow(
            name=new.name,
            version=after + 1,
            spec=new.spec,
            spec_hash=new.spec_hash,
            source=new.source,
            created_at=datetime.now(UTC),
        )
        self._session.add(row)
        await self._session.flush()
        await announce(self._session, DEPLOYMENTS)  # every replica re-reads them at commit
        return _detach(row)


def _detach(row: DeploymentVersionRow) -> DeploymentVersion:
    created = row.created_at
    if created.tzinfo is None:  # SQLite keeps no zone; every value was written in UTC
        created = created.replace(tzinfo=UTC)
    return DeploymentVersion(row.name, row.version, row.spec, row.spec_hash, row.source, created)
