"""The tenancy aggregate: projects, API keys (digests only) and a generation counter.

Every write bumps ``tenancy_generation``; running servers poll that one row and reload their key
cache when it moved, so a key created or revoked anywhere takes effect everywhere within the
poll interval, without a restart and without a database round trip per request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base
from modelyard.store.changes import KEYS, announce
from modelyard.tenancy.model import ApiKey, Limits, Project


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_budget_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    monthly_budget_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    guardrails: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", name="fk_api_keys_project_id"), nullable=True, index=True
    )
    name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    deployments: Mapped[str | None] = mapped_column(Text, nullable=True)  # comma-separated
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_budget_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    monthly_budget_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    guardrails: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TenancyGenerationRow(Base):
    __tablename__ = "tenancy_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


_LIMIT_FIELDS = ("rpm", "tpm", "daily_budget_micros", "monthly_budget_micros")


def _limits(row: ProjectRow | ApiKeyRow) -> Limits:
    return Limits(row.rpm, row.tpm, row.daily_budget_micros, row.monthly_budget_micros)


def _project(row: ProjectRow) -> Project:
    return Project(row.id, row.description, _limits(row), row.created_at, row.guardrails)


def _key(row: ApiKeyRow) -> ApiKey:
    deployments = tuple(row.deployments.split(",")) if row.deployments else None
    return ApiKey(
        row.id,
        row.digest,
        row.role,
        row.project_id,
        row.name,
        deployments,
        _limits(row),
        row.expires_at,
        row.revoked_at,
        row.created_at,
        row.guardrails,
    )


class Tenancy:
    """Reads and writes within the caller's transaction; every write bumps the generation."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def generation(self) -> int:
        value = await self._session.scalar(
            select(TenancyGenerationRow.generation).where(TenancyGenerationRow.id == 1)
        )
        return int(value or 0)

    async def _bump(self) -> None:
        # The migration inserts the single row; concurrent writers serialise on it.
        await self._session.execute(
            update(TenancyGenerationRow)
            .where(TenancyGenerationRow.id == 1)
            .values(generation=TenancyGenerationRow.generation + 1)
        )
        # Every replica re-reads its keys when this commits (store/changes.py).
        await announce(self._session, KEYS)

    async def project(self, project_id: str) -> Project | None:
        row = await self._session.get(ProjectRow, project_id)
        return _project(row) if row else None

    async def projects(self) -> list[Project]:
        rows = await self._session.scalars(select(ProjectRow).order_by(ProjectRow.id))
        return [_project(r) for r in rows]

    async def add_project(self, project: Project) -> None:
        self._session.add(
            ProjectRow(
                id=project.id,
                description=project.description,
                created_at=project.created_at,
                guardrails=project.guardrails,
                **_limit_values(project.limits),
            )
        )
        await self._session.flush()
        await self._bump()

    async def set_project_limits(self, project_id: str, limits: Limits) -> bool:
        done = await self._session.execute(
            update(ProjectRow).where(ProjectRow.id == project_id).values(**_limit_values(limits))
        )
        await self._bump()
        return bool(getattr(done, "rowcount", 0))

    async def key(self, key_id: str) -> ApiKey | None:
        row = await self._session.get(ApiKeyRow, key_id)
        return _key(row) if row else None

    async def keys(self, project_id: str | None = None) -> list[ApiKey]:
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if project_id is not None:
            query = query.where(ApiKeyRow.project_id == project_id)
        return [_key(r) for r in await self._session.scalars(query)]

    async def add_key(self, key: ApiKey) -> None:
        self._session.add(
            ApiKeyRow(
                id=key.id,
                digest=key.digest,
                role=key.role,
                project_id=key.project_id,
                name=key.name,
                deployments=",".join(key.deployments) if key.deployments else None,
                expires_at=key.expires_at,
                revoked_at=key.revoked_at,
                created_at=key.created_at,
                guardrails=key.guardrails,
                **_limit_values(key.limits),
            )
        )
        await self._session.flush()
        await self._bump()

    async def revoke_key(self, key_id: str, at: datetime) -> bool:
        done = await self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        await self._bump()
        return bool(getattr(done, "rowcount", 0))

    async def set_key_limits(self, key_id: str, limits: Limits) -> bool:
        done = await self._session.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(**_limit_values(limits))
        )
        await self._bump()
        return bool(getattr(done, "rowcount", 0))

    async def set_project_guardrails(self, project_id: str, policy: str | None) -> bool:
        """Attach ``policy`` (a name, ``off``) to the project; None detaches."""
        done = await self._session.execute(
            update(ProjectRow).where(ProjectRow.id == project_id).values(guardrails=policy)
        )
        await self._bump()
        return bool(getattr(done, "rowcount", 0))

    async def set_key_guardrails(self, key_id: str, policy: str | None) -> bool:
        """Attach ``policy`` (a name, ``off``) to the key; None detaches."""
        done = await self._session.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(guardrails=policy)
        )
        await self._bump()
        return bool(getattr(done, "rowcount", 0))


def _limit_values(limits: Limits) -> dict[str, int | None]:
    return {name: getattr(limits, name) for name in _LIMIT_FIELDS}
