"""Revision 0014: the audit log is appended to and read back with its filters, and the database
itself refuses to change or delete an entry (SQLite and PostgreSQL); single sign-on users are
created when first seen and updated at each sign-in; the downgrade removes both tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.store import Store, StoreError
from modelyard.store.audit import AuditLog, Users
from modelyard.store.migrate import alembic_config
from modelyard.tenancy.model import AuditEntry, AuditFilter, SsoUser

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _entry(minutes: int, actor: str, kind: str, target: str) -> AuditEntry:
    return AuditEntry(
        T0 + timedelta(minutes=minutes), actor, "10.0.0.7", kind, target,
        None, f'{{"id": "{target}"}}', f"req-{minutes}",
    )  # fmt: skip


async def _seed(store: Store) -> None:
    async with store.transaction() as session:
        log = AuditLog(session)
        await log.append(_entry(0, "key:abc", "project.create", "p1"))
        await log.append(_entry(1, "user:alice", "key.create", "k1"))
        await log.append(_entry(2, "key:abc", "key.revoke", "k1"))


async def test_entries_come_back_in_order_with_their_filters(store: Store) -> None:
    await _seed(store)
    async with store.transaction() as session:
        log = AuditLog(session)
        every = await log.entries(AuditFilter(), 100)
        by_actor = await log.entries(AuditFilter(actor="key:abc"), 100)
        keys = await log.entries(AuditFilter(kind="key."), 100)
        exact = await log.entries(AuditFilter(kind="key.create"), 100)
        since = await log.entries(AuditFilter(since=T0 + timedelta(minutes=1)), 100)
        first = await log.entries(AuditFilter(), 1)
        page = await log.entries(AuditFilter(after_seq=first[0].seq), 100)
    assert [e.kind for e in every] == ["project.create", "key.create", "key.revoke"]
    assert every[1].actor == "user:alice" and every[1].client == "10.0.0.7"
    assert every[1].after == '{"id": "k1"}' and every[1].request_id == "req-1"
    assert _aware(every[0].at) == T0
    assert [e.target for e in by_actor] == ["p1", "k1"]
    assert [e.kind for e in keys] == ["key.create", "key.revoke"]
    assert [e.kind for e in exact] == ["key.create"]
    assert [e.kind for e in since] == ["key.create", "key.revoke"]
    assert [e.kind for e in page] == ["key.create", "key.revoke"]
    assert every[0].seq < every[1].seq < every[2].seq


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'key:forged'", "DELETE FROM audit_log"],
)
async def test_the_database_refuses_to_rewrite_the_log(store: Store, statement: str) -> None:
    await _seed(store)
    with pytest.raises(StoreError):  # SQLite: an integrity error; PostgreSQL: a raise
        async with store.transaction() as session:
            await session.execute(text(statement))
    async with store.transaction() as session:
        left = await AuditLog(session).entries(AuditFilter(), 100)
    assert [e.actor for e in left] == ["key:abc", "user:alice", "key:abc"]


async def test_a_user_is_created_when_first_seen_and_updated_after(store: Store) -> None:
    first = SsoUser("https://idp", "alice", "a@x", "Alice", "member", ("p1",), T0, T0)
    later = T0 + timedelta(days=1)
    async with store.transaction() as session:
        await Users(session).seen(first)
    async with store.transaction() as session:
        again = SsoUser(
            "https://idp", "alice", "a@y", "Alice B", "owner", ("p1", "p2"), later, later
        )
        stored = await Users(session).seen(again)
        other = await Users(session).get("https://other", "alice")
    assert other is None
    assert (stored.email, stored.role, stored.projects) == ("a@y", "owner", ("p1", "p2"))
    assert _aware(stored.first_seen) == T0 and _aware(stored.last_seen) == later
    async with store.transaction() as session:
        assert len(await Users(session).all()) == 1


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _migrate(conn: Connection) -> tuple[set[str], set[str]]:
    command.upgrade(alembic_config(conn), "0014")
    up = set(inspect(conn).get_table_names())
    command.downgrade(alembic_config(conn), "0010")
    return up, set(inspect(conn).get_table_names())


async def test_revision_0014_adds_and_removes_the_tables(store_url: str) -> None:
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            up, down = await conn.run_sync(_migrate)
    finally:
        await engine.dispose()
    assert {"audit_log", "sso_users"} <= up
    assert not {"audit_log", "sso_users"} & down
