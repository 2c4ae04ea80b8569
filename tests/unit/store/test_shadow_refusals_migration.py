"""Revision 0020 adds ``shadow_records.primary_refusal`` and ``candidate_refusal``: the records
already stored read NULL (no mark: they cannot know), new ones keep a refusal apart from the
text; the store reads them back marked; the downgrade takes the columns away and keeps the rows,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Connection, inspect, text

from modelyard.store import open_store
from modelyard.store.migrate import alembic_config
from modelyard.store.shadow_records import ShadowRecord, ShadowRecords
from tests.unit.store.migrations import migrated

_PAIR = (
    "INSERT INTO shadow_records (created_at, request_id, deployment, request, primary_provider, "
    "primary_model, primary_output, primary_latency_ms, primary_input_tokens, "
    "primary_output_tokens, candidate_provider, candidate_model, candidate_output, "
    "candidate_latency_ms, candidate_input_tokens, candidate_output_tokens{names}) VALUES "
    "('2026-12-07 10:00:00', '{rid}', 'chat', '{{}}', 'p', 'pm', 'hi', 1.0, 1, 1, 'c', 'cm', "
    "'', 2.0, 1, 0{values})"
)


def _columns(conn: Connection) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("shadow_records")}


def _migrate(conn: Connection) -> list[tuple[str, str | None, str | None]]:
    command.upgrade(alembic_config(conn), "0019")
    assert "candidate_refusal" not in _columns(conn)
    conn.execute(text(_PAIR.format(rid="old", names="", values="")))
    command.upgrade(alembic_config(conn), "0020")
    names, values = ", candidate_refusal", ", 'No.'"
    conn.execute(text(_PAIR.format(rid="new", names=names, values=values)))
    query = "SELECT request_id, primary_refusal, candidate_refusal FROM shadow_records"
    found = sorted((str(r), p, c) for r, p, c in conn.execute(text(query)).all())
    command.downgrade(alembic_config(conn), "0019")
    assert not {"primary_refusal", "candidate_refusal"} & _columns(conn)
    (count,) = conn.execute(text("SELECT count(*) FROM shadow_records")).one()
    assert count == 2  # the rows stay, without their refusals
    return found


async def test_revision_0020_keeps_refusals_apart_and_downgrades(store_url: str) -> None:
    assert await migrated(store_url, _migrate) == [("new", None, "No."), ("old", None, None)]


async def test_a_record_s_refusals_are_read_back_marked(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        pair = ShadowRecord(
            datetime.now(UTC), "r1", "chat", "{}", "p", "pm", "", 1.0, 1, 1, None,
            "c", "cm", "an answer", 2.0, 1, 2, None, None, primary_refusal="No.",
        )  # fmt: skip
        async with store.transaction() as session:
            await ShadowRecords(session).append([pair])
        async with store.transaction() as session:
            (back,) = await ShadowRecords(session).list("chat")
    finally:
        await store.aclose()
    assert (back.primary_refused, back.primary_refusal, back.primary_output) == (True, "No.", "")
    assert (back.candidate_refused, back.candidate_output) == (False, "an answer")
