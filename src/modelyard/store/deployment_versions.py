"""The ``deployment_versions`` aggregate: every recorded spec of a deployment, numbered 1..n
per name. Rows are only ever appended; what a version means is the services' business."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import String, UniqueConstraint, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base
from modelyard.store.changes import DEPLOYMENTS, announce
from modelyard.store.versions import SpecVersion, VersionColumns, VersionLog, detach


class DeploymentVersionRow(VersionColumns, Base):
    __tablename__ = "deployment_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    name: Mapped[str] = mapped_column(String(128), index=True)


# A recorded version of a deployment's spec.
DeploymentVersion = SpecVersion


@dataclass(frozen=True, slots=True)
class NewVersion:
    name: str
    spec: str
    spec_hash: str
    source: str


class DeploymentVersions(VersionLog[DeploymentVersionRow]):
    """Reads and appends deployments' versions within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session, DeploymentVersionRow)

    async def head(self) -> int:
        """The newest version's row id over every deployment (0: none): it moves whenever a
        version is recorded, so a replica polls this one number."""
        return int(await self._session.scalar(select(func.max(DeploymentVersionRow.id))) or 0)

    async def append(self, new: NewVersion, after: int) -> DeploymentVersion:
        """Record ``new`` as version ``after + 1`` (``VersionLog.add``); every replica re-reads
        the deployments when the transaction commits."""
        row = await self.add(new.name, new.spec, new.spec_hash, new.source, after)
        await announce(self._session, DEPLOYMENTS)
        return detach(row)
