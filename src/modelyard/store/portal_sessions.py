"""The ``portal_sessions`` table (revision 0018): the portal's signed-in browsers, shared by
every worker and replica.

A row is keyed by the SHA-256 of the session's cookie value, so someone who reads the table
cannot take over a session with what they read. It keeps who signed in and how (a key, by its
id and digest, re-checked on every page; or a person through single sign-on, by subject, with
the role and memberships their claims mapped to), the project the person acts in, the CSRF
token, the ID token (the provider's sign-out hint) and the times. Deleting the row ends the
session wherever the browser's next request lands. No business rules: what a row means is the
portal's (``portal/stored_sessions.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, String, Text, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base


class PortalSessionRow(Base):
    __tablename__ = "portal_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # "key" or "sso"
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    key_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16))
    memberships: Mapped[str] = mapped_column(Text)  # JSON: [[project, role], ...]
    project: Mapped[str | None] = mapped_column(String(64), nullable=True)
    id_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One row as plain values."""

    id_hash: str
    csrf: str
    kind: str
    key_id: str | None
    key_digest: str | None
    subject: str | None
    name: str
    role: str
    memberships: str
    project: str | None
    id_token: str | None
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


def _record(row: PortalSessionRow) -> SessionRecord:
    return SessionRecord(
        row.id_hash, row.csrf, row.kind, row.key_id, row.key_digest, row.subject, row.name,
        row.role, row.memberships, row.project, row.id_token, row.created_at, row.last_seen,
        row.expires_at,
    )  # fmt: skip


class PortalSessions:
    """Reads and writes ``portal_sessions`` within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, record: SessionRecord) -> None:
        self._session.add(
            PortalSessionRow(
                id_hash=record.id_hash, csrf=record.csrf, kind=record.kind,
                key_id=record.key_id, key_digest=record.key_digest, subject=record.subject,
                name=record.name, role=record.role, memberships=record.memberships,
                project=record.project, id_token=record.id_token,
                created_at=record.created_at, last_seen=record.last_seen,
                expires_at=record.expires_at,
            )
        )  # fmt: skip
        await self._session.flush()

    async def get(self, id_hash: str) -> SessionRecord | None:
        row = await self._session.get(PortalSessionRow, id_hash)
        return _record(row) if row is not None else None

    async def touch(self, id_hash: str, at: datetime, project: str | None) -> None:
        """The session was used at ``at`` (and acts in ``project``)."""
        await self._session.execute(
            update(PortalSessionRow)
            .where(PortalSessionRow.id_hash == id_hash)
            .values(last_seen=at, project=project)
        )

    async def remove(self, id_hash: str) -> bool:
        done = await self._session.execute(
            delete(PortalSessionRow).where(PortalSessionRow.id_hash == id_hash)
        )
        return bool(getattr(done, "rowcount", 0))

    async def remove_of(self, *, subject: str | None = None, key_id: str | None = None) -> int:
        """End every session of a person (by subject) or of a key (by id); how many ended."""
        if subject is None and key_id is None:
            return 0
        where = (
            PortalSessionRow.subject == subject
            if subject is not None
            else PortalSessionRow.key_id == key_id
        )
        done = await self._session.execute(delete(PortalSessionRow).where(where))
        return int(getattr(done, "rowcount", 0) or 0)

    async def prune(self, now: datetime, idle_before: datetime) -> None:
        """Drop sessions past their lifetime or idle since ``idle_before`` or earlier."""
        await self._session.execute(
            delete(PortalSessionRow).where(
                or_(PortalSessionRow.expires_at <= now, PortalSessionRow.last_seen <= idle_before)
            )
        )

    async def count(self) -> int:
        found = await self._session.scalar(select(func.count()).select_from(PortalSessionRow))
        return int(found or 0)
