"""Revision 0016 adds ``usage_records.bytes_in`` and ``bytes_out`` (a tool step's sizes):
the rows already there keep NULL, new rows carry the sizes; the downgrade takes both away, on
SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, text

from modelyard.store.migrate import alembic_config
from tests.unit.store.migrations import insert_usage, migrated, usage_columns


def _migrate(conn: Connection) -> list[tuple[object, ...]]:
    command.upgrade(alembic_config(conn), "0015")
    assert not {"bytes_in", "bytes_out"} & usage_columns(conn)
    insert_usage(conn, "old", endpoint="mcp_call", tokens=(0, 0), attempts=0)
    command.upgrade(alembic_config(conn), "0016")
    assert {"bytes_in", "bytes_out"} <= usage_columns(conn)
    sizes = {"bytes_in": "14", "bytes_out": "3000000000"}  # beyond 2**31: BIGINT, never fails
    insert_usage(conn, "new", sizes, endpoint="mcp_call", tokens=(0, 0), attempts=0)
    query = "SELECT request_id, bytes_in, bytes_out FROM usage_records ORDER BY request_id"
    found = [tuple(r) for r in conn.execute(text(query)).all()]
    command.downgrade(alembic_config(conn), "0015")
    assert not {"bytes_in", "bytes_out"} & usage_columns(conn)
    (count,) = conn.execute(text("SELECT count(*) FROM usage_records")).one()
    assert count == 2  # the rows stay, without their sizes
    return found


async def test_revision_0016_adds_nullable_sizes_and_downgrades(store_url: str) -> None:
    rows = await migrated(store_url, _migrate)
    assert rows == [("new", 14, 3000000000), ("old", None, None)]
