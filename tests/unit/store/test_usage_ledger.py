"""The usage ledger's write path: rows in, records out, exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from modelyard.store import Store, StoreError, open_store
from modelyard.store.ledger_writer import SqliteLedgerWriter, ledger_writer
from modelyard.store.usage import UsageLedger, UsageRecord, ledger_row
from modelyard.tenancy.model import UsageFilter
from tests.waiting import eventually

START = datetime(2026, 12, 2, 23, 59, 59, 999_000, tzinfo=UTC)


def _record(i: int) -> UsageRecord:
    at = START + timedelta(microseconds=1_001 * i)  # crosses a second, a day and a month
    return UsageRecord(
        request_id=f"req-{i}",
        created_at=at,
        day=at.date().isoformat(),
        project_id=f"p{i % 3}" if i % 5 else None,
        key_id=f"key{i:09d}" if i % 7 else None,
        endpoint=("/v1/chat/completions" if i % 2 else "/v1/embeddings") if i % 19 else "mcp_call",
        deployment=f"d{i % 4}",
        provider="fake" if i % 11 else None,
        model="gpt-4o-mini" if i % 11 else None,
        status=200 if i % 13 else 499,
        stream=bool(i % 2),
        input_tokens=i,
        output_tokens=2 * i,
        cached_input_tokens=i // 2,
        cache_write_tokens=i // 3,
        reasoning_tokens=i // 4,
        cost_micros=i * 1_000_003 if i % 17 else None,
        latency_ms=i + 0.125,
        ttft_ms=i / 8 if i % 2 else None,
        attempts=1 + i % 3,
        usage_reported=bool(i % 3),
        # a tool step's sizes (revision 0016): on the tool rows only, 0 bytes out included
        bytes_in=None if i % 19 else 10 * i,
        bytes_out=None if i % 19 else i % 3 * 1_000_003,
    )


async def test_rows_come_back_as_the_records_they_were_made_from(store: Store) -> None:
    # 300 rows: on SQLite several multi-row statements of different sizes (256, 16, 16, 4, 4, 4).
    records = [_record(i) for i in range(300)]
    async with store.transaction() as session:
        await UsageLedger(session).append([ledger_row(r) for r in records])
    async with store.transaction() as session:
        back = await UsageLedger(session).records(UsageFilter(), limit=1_000)
    assert len(back) == len(records)
    for want, got in zip(records, back, strict=True):
        got_at = got.created_at if got.created_at.tzinfo else got.created_at.replace(tzinfo=UTC)
        assert got_at == want.created_at, want.request_id
        assert dataclasses.replace(got, created_at=want.created_at) == want


async def test_a_time_a_hair_before_the_second_rounds_to_the_microsecond(store: Store) -> None:
    record = _record(1)
    row = ledger_row(record)
    row = (row[0], datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC).timestamp() - 1e-7, *row[2:])
    async with store.transaction() as session:
        await UsageLedger(session).append([row])
    async with store.transaction() as session:
        (back,) = await UsageLedger(session).records(UsageFilter())
    got = back.created_at if back.created_at.tzinfo else back.created_at.replace(tzinfo=UTC)
    assert got == datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)


async def test_the_servers_writer_round_trips_on_either_backend(store: Store) -> None:
    writer = ledger_writer(store)
    try:
        records = [_record(i) for i in range(300)]
        await writer.write([ledger_row(r) for r in records[:100]])
        await writer.write([ledger_row(r) for r in records[100:]])
    finally:
        await writer.aclose()
    async with store.transaction() as session:
        back = await UsageLedger(session).records(UsageFilter(), limit=1_000)
    assert [r.request_id for r in back] == [r.request_id for r in records]
    assert back[-1].cost_micros == records[-1].cost_micros
    sizes = [(r.endpoint, r.bytes_in, r.bytes_out) for r in records]
    assert [(r.endpoint, r.bytes_in, r.bytes_out) for r in back] == sizes
    assert sum(r.bytes_in is not None for r in back) == 16


async def test_a_retried_batch_is_written_once(store: Store) -> None:
    """The writer retries a batch whose commit it could not confirm: the rows already there
    (same request ids) are ignored, the new ones written (revision 0013)."""
    writer = ledger_writer(store)
    try:
        records = [_record(i) for i in range(50)]
        await writer.write([ledger_row(r) for r in records[:30]])
        await writer.write([ledger_row(r) for r in records])  # the first 30 again
    finally:
        await writer.aclose()
    async with store.transaction() as session:
        back = await UsageLedger(session).records(UsageFilter(), limit=1_000)
    assert [r.request_id for r in back] == [r.request_id for r in records]


@pytest.fixture
async def sqlite_writer(tmp_path: Path) -> AsyncIterator[tuple[Store, SqliteLedgerWriter]]:
    """A store on a SQLite file and the server's ledger writer for it (its own process)."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'modelyard.db'}")
    writer = ledger_writer(store)
    assert isinstance(writer, SqliteLedgerWriter)
    try:
        yield store, writer
    finally:
        await writer.aclose()
        await store.aclose()


async def _answered_or_busy(pending: asyncio.Task[None], writer: SqliteLedgerWriter) -> bool:
    """Whether the write has ended, or its process sleeps in SQLite's busy handler: it found
    the file locked and waits to try again. Nothing else in that process sleeps on a timer (it
    blocks reading its input or the file otherwise), so the kernel's word for where it sleeps
    tells the two apart."""
    child = writer._child
    if pending.done():
        return True
    if child is None:  # not started yet
        return False
    try:
        where = Path(f"/proc/{child.pid}/wchan").read_text()
    except FileNotFoundError:  # it has ended: the write is about to end too
        return False
    return "nanosleep" in where


async def test_the_sqlite_writer_waits_for_the_engines_write_and_fails_clearly(
    sqlite_writer: tuple[Store, SqliteLedgerWriter],
) -> None:
    store, writer = sqlite_writer
    async with store.transaction() as session:  # BEGIN IMMEDIATE: the file's write lock
        await session.execute(text("UPDATE tenancy_generation SET generation = generation"))
        pending = asyncio.create_task(writer.write([ledger_row(_record(1))]))
        await eventually(lambda: _answered_or_busy(pending, writer), "the write to try the lock")
        assert not pending.done()  # waiting on the lock, not failing
    await pending
    async with store.transaction() as session:
        assert len(await UsageLedger(session).records(UsageFilter())) == 1
        await session.execute(text("DROP TABLE usage_records"))
    child = writer._child
    assert child is not None
    with pytest.raises(StoreError, match="no such table: usage_records"):
        await writer.write([ledger_row(_record(2))])
    assert writer._child is None  # a process that failed a batch is let go ...
    assert await child.wait() == 0  # ... and ends, its input closed


def _reaped(pid: int) -> bool:
    """Whether the process ``pid`` is gone, waited for (a zombie still has its /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


async def test_a_process_let_go_mid_batch_is_waited_for_and_closing_waits_for_it(
    sqlite_writer: tuple[Store, SqliteLedgerWriter],
) -> None:
    store, writer = sqlite_writer
    await writer.write([ledger_row(_record(1))])
    async with store.transaction() as session:  # the file's write lock: the next batch waits
        await session.execute(text("UPDATE tenancy_generation SET generation = generation"))
        pending = asyncio.create_task(writer.write([ledger_row(_record(2))]))
        await eventually(lambda: _answered_or_busy(pending, writer), "the write to try the lock")
        child = writer._child
        assert child is not None
        pending.cancel()  # as a shutdown's deadline does: this process is let go, busy
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert writer._child is None and child.returncode is None
        closing = asyncio.create_task(writer.aclose())
        for _ in range(5):  # let the close run as far as it can while the lock is held
            await asyncio.sleep(0)
        assert not closing.done()  # it waits for the process let go, not only the current
    await closing  # the lock is free: the process finishes its batch and ends
    assert child.returncode == 0 and _reaped(child.pid)
    async with store.transaction() as session:
        written = await UsageLedger(session).records(UsageFilter())
    assert sorted(r.request_id for r in written) == [_record(i).request_id for i in (1, 2)]


async def test_a_process_that_failed_a_batch_is_reaped_without_anyone_waiting(
    sqlite_writer: tuple[Store, SqliteLedgerWriter],
) -> None:
    store, writer = sqlite_writer
    await writer.write([ledger_row(_record(1))])
    async with store.transaction() as session:
        await session.execute(text("DROP TABLE usage_records"))
    child = writer._child
    assert child is not None
    with pytest.raises(StoreError):
        await writer.write([ledger_row(_record(2))])
    await eventually(lambda: _gone(child.pid), "the failed process to be reaped")


async def _gone(pid: int) -> bool:
    return _reaped(pid)


async def test_the_sqlite_writer_process_ignores_group_signals_and_is_replaced_if_killed(
    sqlite_writer: tuple[Store, SqliteLedgerWriter],
) -> None:
    store, writer = sqlite_writer
    await writer.write([ledger_row(_record(1))])
    child = writer._child
    assert child is not None
    # Ctrl-C or a service manager signals the whole group: the rows still to come (the
    # server's shutdown flush) must reach the same writer.
    child.send_signal(signal.SIGINT)
    child.send_signal(signal.SIGTERM)
    # No wait needed: a signal is delivered before the child next runs in user space, which it
    # must do to answer this batch; a child that did not ignore them would be gone by then.
    await writer.write([ledger_row(_record(2))])
    assert writer._child is child and child.returncode is None
    child.kill()
    await child.wait()
    await writer.write([ledger_row(_record(3))])  # on a new process
    assert writer._child is not child
    async with store.transaction() as session:
        written = await UsageLedger(session).records(UsageFilter())
    assert sorted(r.request_id for r in written) == [_record(i).request_id for i in (1, 2, 3)]
    current = writer._child
    assert current is not None
    await writer.aclose()
    assert current.returncode is not None  # closing its input ended the process
