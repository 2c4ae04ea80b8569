"""The ``agents`` aggregate: every recorded version of an agent (``agent_versions``, numbered
1..n per name, only ever appended) and each agent's head (``agents``: which version is live and
where the agent comes from). What a spec means is the services' business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base
from modelyard.store.versions import SpecVersion, VersionColumns, VersionLog, detach


class AgentVersionRow(VersionColumns, Base):
    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    name: Mapped[str] = mapped_column(String(64), index=True)


class AgentRow(Base):
    __tablename__ = "agents"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    live_version: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# A recorded version of an agent's spec.
AgentVersion = SpecVersion


@dataclass(frozen=True, slots=True)
class AgentHead:
    name: str
    live_version: int
    origin: str  # "config" or "api"
    updated_at: datetime


class Agents(VersionLog[AgentVersionRow]):
    """Reads and writes agents (their versions and heads) within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session, AgentVersionRow)

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

    async def append(
        self, name: str, spec: str, spec_hash: str, source: str, after: int
    ) -> AgentVersion:
        """Record version ``after + 1`` (``VersionLog.add``: a racing writer makes the unique
        (name, version) constraint fire, ``VersionConflict``)."""
        return detach(await self.add(name, spec, spec_hash, source, after))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _head(row: AgentRow) -> AgentHead:
    return AgentHead(row.name, row.live_version, row.origin, _utc(row.updated_at))
