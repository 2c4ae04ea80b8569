"""Revision 0010: a project's and a key's guardrail attachment round-trip through the store
(SQLite and PostgreSQL); the downgrade takes both columns away."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.store import Store
from modelyard.store.migrate import alembic_config
from modelyard.store.tenancy import Tenancy
from modelyard.tenancy.model import ApiKey, Limits, Project

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


async def test_attachments_round_trip(store: Store) -> None:
    key = ApiKey("k1", "ab" * 32, "member", "p1", None, None, Limits(), None, None, NOW, "strict")
    async with store.transaction() as session:
        tenancy = Tenancy(session)
        await tenancy.add_project(Project("p1", None, Limits(), NOW, "pii"))
        await tenancy.add_project(Project("p2", None, Limits(), NOW))
        await tenancy.add_key(key)
    async with store.transaction() as session:
        tenancy = Tenancy(session)
        assert [(p.id, p.guardrails) for p in await tenancy.projects()] == [
            ("p1", "pii"),
            ("p2", None),
        ]
        stored = await tenancy.key("k1")
        assert stored is not None and stored.guardrails == "strict"
        assert await tenancy.set_key_guardrails("k1", "off")
        assert await tenancy.set_project_guardrails("p1", None)
        assert not await tenancy.set_project_guardrails("nope", "pii")
    async with store.transaction() as session:
        tenancy = Tenancy(session)
        stored = await tenancy.key("k1")
        project = await tenancy.project("p1")
    assert stored is not None and stored.guardrails == "off"
    assert project is not None and project.guardrails is None


def _migrate(conn: Connection) -> tuple[bool, bool]:
    command.upgrade(alembic_config(conn), "0010")
    up = all(
        "guardrails" in {c["name"] for c in inspect(conn).get_columns(t)}
        for t in ("projects", "api_keys")
    )
    command.downgrade(alembic_config(conn), "0009")
    down = any(
        "guardrails" in {c["name"] for c in inspect(conn).get_columns(t)}
        for t in ("projects", "api_keys")
    )
    return up, down


async def test_revision_0010_adds_and_removes_the_columns(store_url: str) -> None:
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            up, down = await conn.run_sync(_migrate)
    finally:
        await engine.dispose()
    assert (up, down) == (True, False)
