"""Revision 0006 adds ``usage_records.parent_id``: old rows keep NULL, new rows carry a
parent, and the downgrade gives the column back, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.store.migrate import alembic_config

_INSERT = (
    "INSERT INTO usage_records (request_id, created_at, day, endpoint, status, stream, "
    "input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, "
    "latency_ms, attempts, usage_reported{extra}) VALUES ('{rid}', '2026-12-06 10:00:00', "
    "'2026-12-06', '/v1/chat/completions', 200, false, 1, 2, 0, 0, 0, 1.5, 1, true{value})"
)


def _columns(conn: Connection) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("usage_records")}


def _migrate(conn: Connection) -> list[tuple[object, ...]]:
    command.upgrade(alembic_config(conn), "0005")
    assert "parent_id" not in _columns(conn)
    conn.execute(text(_INSERT.format(extra="", rid="old", value="")))
    command.upgrade(alembic_config(conn), "head")
    assert "parent_id" in _columns(conn)
    conn.execute(text(_INSERT.format(extra=", parent_id", rid="step", value=", 'old'")))
    rows = conn.execute(
        text("SELECT request_id, parent_id FROM usage_records ORDER BY request_id")
    ).all()
    command.downgrade(alembic_config(conn), "0005")
    assert "parent_id" not in _columns(conn)
    return [tuple(r) for r in rows]


async def test_revision_0006_adds_a_nullable_parent_id_and_downgrades(store_url: str):
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            rows = await conn.run_sync(_migrate)
    finally:
        await engine.dispose()
    assert rows == [("old", None), ("step", "old")]
