"""Revision 0016 adds ``usage_records.bytes_in`` and ``bytes_out`` (a tool step's sizes):
the rows already there keep NULL, new rows carry the sizes; the downgrade takes both away, on
SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.store.migrate import alembic_config

_INSERT = (
    "INSERT INTO usage_records (request_id, created_at, day, endpoint, status, stream, "
    "input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, "
    "latency_ms, attempts, usage_reported{extra}) VALUES ('{rid}', '2026-12-06 10:00:00', "
    "'2026-12-06', 'mcp_call', 200, false, 0, 0, 0, 0, 0, 1.5, 0, true{value})"
)


def _columns(conn: Connection) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("usage_records")}


def _migrate(conn: Connection) -> list[tuple[object, ...]]:
    command.upgrade(alembic_config(conn), "0015")
    assert not {"bytes_in", "bytes_out"} & _columns(conn)
    conn.execute(text(_INSERT.format(extra="", rid="old", value="")))
    command.upgrade(alembic_config(conn), "0016")
    assert {"bytes_in", "bytes_out"} <= _columns(conn)
    sizes = ", 14, 3000000000"  # beyond 2**31: BIGINT, no size can fail a batch
    conn.execute(text(_INSERT.format(extra=", bytes_in, bytes_out", rid="new", value=sizes)))
    query = "SELECT request_id, bytes_in, bytes_out FROM usage_records ORDER BY request_id"
    found = [tuple(r) for r in conn.execute(text(query)).all()]
    command.downgrade(alembic_config(conn), "0015")
    assert not {"bytes_in", "bytes_out"} & _columns(conn)
    (count,) = conn.execute(text("SELECT count(*) FROM usage_records")).one()
    assert count == 2  # the rows stay, without their sizes
    return found


async def test_revision_0016_adds_nullable_sizes_and_downgrades(store_url: str) -> None:
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            rows = await conn.run_sync(_migrate)
    finally:
        await engine.dispose()
    assert rows == [("new", 14, 3000000000), ("old", None, None)]
