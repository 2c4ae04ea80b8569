"""Revision 0009 adds ``usage_records.route``: old rows keep NULL, new rows carry the routing
decision; it also creates ``router_artifacts``; the downgrade takes both away, on SQLite and
PostgreSQL."""

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
    command.upgrade(alembic_config(conn), "0006")
    assert "route" not in _columns(conn)
    conn.execute(text(_INSERT.format(extra="", rid="old", value="")))
    command.upgrade(alembic_config(conn), "0009")
    assert "route" in _columns(conn)
    assert "router_artifacts" in inspect(conn).get_table_names()
    value = ", 'learned:balanced:weak:0.213'"
    conn.execute(text(_INSERT.format(extra=", route", rid="routed", value=value)))
    rows = conn.execute(text("SELECT request_id, route FROM usage_records ORDER BY request_id"))
    found = [tuple(r) for r in rows.all()]
    command.downgrade(alembic_config(conn), "0006")
    assert "route" not in _columns(conn)
    assert "router_artifacts" not in inspect(conn).get_table_names()
    return found


async def test_revision_0009_adds_a_nullable_route_and_downgrades(store_url: str) -> None:
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            rows = await conn.run_sync(_migrate)
    finally:
        await engine.dispose()
    assert rows == [("old", None), ("routed", "learned:balanced:weak:0.213")]
