"""The ``audit_log`` aggregate (append-only) and the ``sso_users`` records.

Audit entries are only ever inserted: this module has no update or delete, and the migration
(revision 0014) adds triggers that make the database refuse an UPDATE or DELETE on the table on
SQLite and PostgreSQL alike, so a bug or a stolen connection of the gateway cannot rewrite the
history. Users signed in through single sign-on are upserted at each sign-in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base
from modelyard.tenancy.model import AuditEntry, AuditFilter, SsoUser

# SQLite makes only INTEGER PRIMARY KEY an alias of the rowid (autoincrementing).
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


class AuditRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    before: Mapped[str | None] = mapped_column(Text, nullable=True)
    after: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class UserRow(Base):
    __tablename__ = "sso_users"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    projects: Mapped[str | None] = mapped_column(Text, nullable=True)  # comma-separated
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        row.at, row.actor, row.client, row.kind, row.target, row.before, row.after,
        row.request_id, row.seq,
    )  # fmt: skip


def _user(row: UserRow) -> SsoUser:
    projects = tuple(row.projects.split(",")) if row.projects else ()
    return SsoUser(
        row.issuer, row.subject, row.email, row.name, row.role, projects,
        row.first_seen, row.last_seen,
    )  # fmt: skip


class AuditLog:
    """Appends and reads audit entries within the caller's transaction. Nothing else."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, entry: AuditEntry) -> None:
        self._session.add(
            AuditRow(
                at=entry.at, actor=entry.actor, client=entry.client, kind=entry.kind,
                target=entry.target, before=entry.before, after=entry.after,
                request_id=entry.request_id,
            )
        )  # fmt: skip
        await self._session.flush()

    async def entries(self, where: AuditFilter, limit: int) -> list[AuditEntry]:
        """Matching entries, oldest first, at most ``limit``."""
        query = select(AuditRow).order_by(AuditRow.seq).limit(limit)
        if where.actor is not None:
            query = query.where(AuditRow.actor == where.actor)
        if where.kind is not None:
            if where.kind.endswith("."):
                query = query.where(AuditRow.kind.startswith(where.kind, autoescape=True))
            else:
                query = query.where(AuditRow.kind == where.kind)
        if where.since is not None:
            query = query.where(AuditRow.at >= where.since)
        if where.after_seq is not None:
            query = query.where(AuditRow.seq > where.after_seq)
        return [_entry(r) for r in await self._session.scalars(query)]


class Users:
    """The people single sign-on has seen, by (issuer, subject)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, issuer: str, subject: str) -> SsoUser | None:
        row = await self._session.scalar(
            select(UserRow).where(UserRow.issuer == issuer, UserRow.subject == subject)
        )
        return _user(row) if row else None

    async def seen(self, user: SsoUser) -> SsoUser:
        """Record ``user`` as signed in now: created the first time, updated after."""
        row = await self._session.scalar(
            select(UserRow).where(UserRow.issuer == user.issuer, UserRow.subject == user.subject)
        )
        projects = ",".join(user.projects) or None
        if row is None:
            row = UserRow(
                issuer=user.issuer, subject=user.subject, email=user.email, name=user.name,
                role=user.role, projects=projects, first_seen=user.first_seen,
                last_seen=user.last_seen,
            )  # fmt: skip
            self._session.add(row)
        else:
            row.email, row.name, row.role = user.email, user.name, user.role
            row.projects, row.last_seen = projects, user.last_seen
        await self._session.flush()
        return _user(row)

    async def all(self) -> list[SsoUser]:
        rows = await self._session.scalars(select(UserRow).order_by(UserRow.id))
        return [_user(r) for r in rows]
