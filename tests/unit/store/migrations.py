"""What the ledger's migration tests share: a row written in SQL as a given revision knows
it, the columns there are, and a migration run on a fresh engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

T = TypeVar("T")
_INSERT = (
    "INSERT INTO usage_records (request_id, created_at, day, endpoint, status, stream, "
    "input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, "
    "latency_ms, attempts, usage_reported{names}) VALUES ('{rid}', '2026-12-06 10:00:00', "
    "'2026-12-06', '{endpoint}', 200, false, {input}, {output}, 0, 0, 0, 1.5, {attempts}, "
    "true{values})"
)


def usage_columns(conn: Connection) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("usage_records")}


def insert_usage(
    conn: Connection,
    rid: str,
    extra: dict[str, str] | None = None,
    *,
    endpoint: str = "/v1/chat/completions",
    tokens: tuple[int, int] = (1, 2),
    attempts: int = 1,
) -> None:
    """One ledger row; ``extra``: more columns and their SQL literals (ours, never input)."""
    extra = extra or {}
    names = "".join(f", {name}" for name in extra)
    values = "".join(f", {value}" for value in extra.values())
    statement = _INSERT.format(
        names=names,
        values=values,
        rid=rid,
        endpoint=endpoint,
        input=tokens[0],
        output=tokens[1],
        attempts=attempts,
    )
    conn.execute(text(statement))


async def migrated(store_url: str, migrate: Callable[[Connection], T]) -> T:
    """``migrate`` run in one transaction of a fresh engine on ``store_url``."""
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(migrate)
    finally:
        await engine.dispose()
