"""The ``agents`` aggregate: every recorded version of an agent (``agent_versions``, numbered
1..n per name, only ever appended) and each agent's head (``agents``: which version is live and
where the agent comes from). What a spec means is the services' business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base


class AgentVersionRow(Base):
    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AgentRow(Base):
    __tablename__ = "agents"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    live_version: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class AgentVersion:
    name: str
    version: int
    spec: str
    spec_hash: str
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AgentHead:
    name: str
    live_version: int
    origin: str  # "config" or "api"
    updated_at: datetime


class Agents:
    """Reads and writes agents within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def head(self, name: str) -> AgentHead | None:
        row = await self._session.get(AgentRow, name)
        return _head(row) if row is not None else None

    async def heads(self) -> list[AgentHead]:
        rows = await self._session.scalars(select(AgentRow).order_by(AgentRow.name))
        return [_head(row) for row in rows]

    async def set_head(self, name: str, live_version: int, origin: str) -> AgentHead:
        row = await self._session.get(AgentRow, name)
        now = datetime.now(UTC)
        if row is None:
            row = AgentRow(name=name, live_version=live_version, origin=origin, updated_at=now)
            self._session.add(row)
        else:
            row.live_version, row.origin, row.updated_at = live_version, origin, now
        await self._session.flush()
        return _head(row)

    async def drop_head(self, name: str) -> bool:
        """The agent is no longer served; its versions stay, for history."""
        result = await self._session.execute(delete(AgentRow).where(AgentRow.name == name))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def drop_versions(self, name: str) -> None:
        await self._session.execute(delete(AgentVersionRow).where(AgentVersionRow.name == name))

    async def latest(self, name: str, source: str | None = None) -> AgentVersion | None:
        query = select(AgentVersionRow).where(AgentVersionRow.name == name)
        if source is not None:
            query = query.where(AgentVersionRow.source == source)
        query = query.order_by(AgentVersionRow.version.desc()).limit(1)
        row = (await self._session.scalars(query)).first()
        return _version(row) if row else None

    async def get(self, name: str, version: int) -> AgentVersion | None:
        query = select(AgentVersionRow).where(
            AgentVersionRow.name == name, AgentVersionRow.version == version
        )
        row = (await self._session.scalars(query)).first()
        return _version(row) if row else None

    async def history(self, name: str) -> list[AgentVersion]:
        query = (
            select(AgentVersionRow)
            .where(AgentVersionRow.name == name)
            .order_by(AgentVersionRow.version)
        )
        return [_version(row) for row in await self._session.scalars(query)]

    async def append(
        self, name: str, spec: str, spec_hash: str, source: str, after: int
    ) -> AgentVersion:
        """Record version ``after + 1`` (``after``: the newest number the caller read). A racing
        writer makes the unique (name, version) constraint fire: ``VersionConflict``."""
        row = AgentVersionRow(
            name=name,
            version=after + 1,
            spec=spec,
            spec_hash=spec_hash,
            source=source,
            created_at=datetime.now(UTC),
        )
        self._session.add(row)
        await self._session.flush()
        return _version(row)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _version(row: AgentVersionRow) -> AgentVersion:
    return AgentVersion(
        row.name, row.version, row.spec, row.spec_hash, row.source, _utc(row.created_at)
    )


def _head(row: AgentRow) -> AgentHead:
    return AgentHead(row.name, row.live_version, row.origin, _utc(row.updated_at))
