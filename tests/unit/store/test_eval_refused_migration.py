"""Revision 0019 adds ``eval_results.refused``: the results already stored read false, new
ones carry the mark; the downgrade takes it away and keeps the rows, on SQLite and
PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect, text

from modelyard.store.migrate import alembic_config
from tests.unit.store.migrations import migrated

_RUN = (
    "INSERT INTO eval_runs (id, dataset, deployments, options, status, created_at) "
    "VALUES ('r1', 'd', '[\"m\"]', '{}', 'done', '2026-12-07 10:00:00')"
)
_RESULT = (
    "INSERT INTO eval_results (run_id, case_id, deployment, repeat, score, passed, reason, "
    "output, tool_calls, latency_s, input_tokens, output_tokens, attempts, created_at{names}) "
    "VALUES ('r1', '{case}', 'm', 0, 0.0, false, '', 'out', '[]', 0.1, 1, 1, 1, "
    "'2026-12-07 10:00:00'{values})"
)


def _columns(conn: Connection) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("eval_results")}


def _migrate(conn: Connection) -> list[tuple[str, bool]]:
    command.upgrade(alembic_config(conn), "0018")
    assert "refused" not in _columns(conn)
    conn.execute(text(_RUN))
    conn.execute(text(_RESULT.format(case="old", names="", values="")))
    command.upgrade(alembic_config(conn), "0019")
    conn.execute(text(_RESULT.format(case="new", names=", refused", values=", true")))
    query = "SELECT case_id, refused FROM eval_results ORDER BY case_id"
    found = [(str(case), bool(refused)) for case, refused in conn.execute(text(query)).all()]
    command.downgrade(alembic_config(conn), "0018")
    assert "refused" not in _columns(conn)
    (count,) = conn.execute(text("SELECT count(*) FROM eval_results")).one()
    assert count == 2  # the rows stay, without their mark
    return found


async def test_revision_0019_adds_the_refused_mark_and_downgrades(store_url: str) -> None:
    assert await migrated(store_url, _migrate) == [("new", True), ("old", False)]
