"""Revision 0006 adds ``usage_records.parent_id``: old rows keep NULL, new rows carry a
parent, and the downgrade gives the column back, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, text

from modelyard.store.migrate import alembic_config
from tests.unit.store.migrations import insert_usage, migrated, usage_columns


def _migrate(conn: Connection) -> list[tuple[object, ...]]:
    command.upgrade(alembic_config(conn), "0005")
    assert "parent_id" not in usage_columns(conn)
    insert_usage(conn, "old")
    command.upgrade(alembic_config(conn), "head")
    assert "parent_id" in usage_columns(conn)
    insert_usage(conn, "step", {"parent_id": "'old'"})
    rows = conn.execute(
        text("SELECT request_id, parent_id FROM usage_records ORDER BY request_id")
    ).all()
    command.downgrade(alembic_config(conn), "0005")
    assert "parent_id" not in usage_columns(conn)
    return [tuple(r) for r in rows]


async def test_revision_0006_adds_a_nullable_parent_id_and_downgrades(store_url: str):
    rows = await migrated(store_url, _migrate)
    assert rows == [("old", None), ("step", "old")]
