"""Revision 0009 adds ``usage_records.route``: old rows keep NULL, new rows carry the routing
decision; it also creates ``router_artifacts``; the downgrade takes both away, on SQLite and
PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect, text

from modelyard.store.migrate import alembic_config
from tests.unit.store.migrations import insert_usage, migrated, usage_columns


def _migrate(conn: Connection) -> list[tuple[object, ...]]:
    command.upgrade(alembic_config(conn), "0006")
    assert "route" not in usage_columns(conn)
    insert_usage(conn, "old")
    command.upgrade(alembic_config(conn), "0009")
    assert "route" in usage_columns(conn)
    assert "router_artifacts" in inspect(conn).get_table_names()
    insert_usage(conn, "routed", {"route": "'learned:balanced:weak:0.213'"})
    rows = conn.execute(text("SELECT request_id, route FROM usage_records ORDER BY request_id"))
    found = [tuple(r) for r in rows.all()]
    command.downgrade(alembic_config(conn), "0006")
    assert "route" not in usage_columns(conn)
    assert "router_artifacts" not in inspect(conn).get_table_names()
    return found


async def test_revision_0009_adds_a_nullable_route_and_downgrades(store_url: str) -> None:
    rows = await migrated(store_url, _migrate)
    assert rows == [("old", None), ("routed", "learned:balanced:weak:0.213")]
