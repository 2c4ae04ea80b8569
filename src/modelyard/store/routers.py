"""The ``router_artifacts`` aggregate: trained learned-router artifacts by name and content
version, with their provenance. Rows are only appended; an artifact already stored under the
same name and version is the same bytes (the version is their digest), so storing it again is
a no-op. What an artifact means is ``routing/model.py``'s business: here it is bytes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVarTuple

from sqlalchemy import (
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import Select

from modelyard.store.base import Base

_Ts = TypeVarTuple("_Ts")


class RouterArtifactRow(Base):
    __tablename__ = "router_artifacts"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(64))
    data_sha256: Mapped[str] = mapped_column(String(64))
    weak_model: Mapped[str] = mapped_column(String(256))
    strong_model: Mapped[str] = mapped_column(String(256))
    seed: Mapped[int] = mapped_column(Integer)
    provenance: Mapped[str] = mapped_column(Text)  # the artifact's JSON header, sources and all
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class StoredRouter:
    """A stored artifact's row without its bytes (listing reads no blobs)."""

    name: str
    version: str
    data_sha256: str
    weak_model: str
    strong_model: str
    seed: int
    provenance: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewRouter:
    name: str
    version: str
    data_sha256: str
    weak_model: str
    strong_model: str
    seed: int
    provenance: str
    artifact: bytes


_COLUMNS = (
    RouterArtifactRow.name,
    RouterArtifactRow.version,
    RouterArtifactRow.data_sha256,
    RouterArtifactRow.weak_model,
    RouterArtifactRow.strong_model,
    RouterArtifactRow.seed,
    RouterArtifactRow.provenance,
    RouterArtifactRow.created_at,
)


class RouterArtifacts:
    """Reads and appends router artifacts within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(self, new: NewRouter) -> tuple[StoredRouter, bool]:
        """Store ``new`` unless ``(name, version)`` is there; True when it was added."""
        found = await self.get(new.name, new.version)
        if found is not None:
            return found, False
        row = RouterArtifactRow(
            name=new.name,
            version=new.version,
            data_sha256=new.data_sha256,
            weak_model=new.weak_model,
            strong_model=new.strong_model,
            seed=new.seed,
            provenance=new.provenance,
            artifact=new.artifact,
            created_at=datetime.now(UTC),
        )
        self._session.add(row)
        await self._session.flush()
        return _stored(row), True

    async def list(self, name: str | None = None) -> list[StoredRouter]:
        """Every stored artifact (of ``name``), oldest first."""
        query = select(*_COLUMNS).order_by(RouterArtifactRow.id)
        if name is not None:
            query = query.where(RouterArtifactRow.name == name)
        return [_detach(tuple(row)) for row in (await self._session.execute(query)).all()]

    async def get(self, name: str, version: str | None = None) -> StoredRouter | None:
        """``name`` at ``version``, or its newest version."""
        query = select(*_COLUMNS).where(RouterArtifactRow.name == name)
        query = _pick(query, version)
        row = (await self._session.execute(query)).first()
        return _detach(tuple(row)) if row else None

    async def artifact(self, name: str, version: str | None = None) -> tuple[str, bytes] | None:
        """The version and bytes of ``name`` at ``version`` (or its newest)."""
        query = select(RouterArtifactRow.version, RouterArtifactRow.artifact).where(
            RouterArtifactRow.name == name
        )
        row = (await self._session.execute(_pick(query, version))).first()
        return (row.version, row.artifact) if row else None


def _pick(query: Select[*_Ts], version: str | None) -> Select[*_Ts]:
    if version is not None:
        return query.where(RouterArtifactRow.version == version)
    return query.order_by(RouterArtifactRow.id.desc()).limit(1)


def _stored(row: RouterArtifactRow) -> StoredRouter:
    return _detach(tuple(getattr(row, c.key) for c in _COLUMNS))


def _detach(values: tuple[Any, ...]) -> StoredRouter:
    """A row's columns in ``_COLUMNS`` order, detached."""
    router = StoredRouter(*values)
    if router.created_at.tzinfo is None:  # SQLite keeps no zone; every value was in UTC
        return replace(router, created_at=router.created_at.replace(tzinfo=UTC))
    return router
