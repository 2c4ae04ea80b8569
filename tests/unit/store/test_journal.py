"""The ledger's journal (``store/journal.py``): what a killed process had begun and finished is
recovered at the next start, once, and the journal stays bounded while the process lives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from modelyard.store import Store
from modelyard.store.journal import Begun, Journal, open_journal, replay
from modelyard.store.ledger_writer import ledger_writer
from modelyard.store.sink import BatchSink
from modelyard.store.usage import INTERRUPTED, LedgerRow, UsageLedger
from modelyard.tenancy.model import UsageFilter

T0 = 1_796_000_000.25


def _begun(i: int, stream: bool = False) -> Begun:
    return (f"req_{i}", T0 + i, "team", f"key{i}", "/v1/chat/completions", "chat", stream, None)


def _row(i: int) -> LedgerRow:
    return (
        f"req_{i}", T0 + i, "2026-11-30", "team", f"key{i}", "/v1/chat/completions", "chat",
        "fake", "gpt-4o-mini", 200, False, 10 + i, 20 + i, 0, 0, 0, 1234 + i, 12.5, None, 1,
        True, None, None, None, None, None,
    )  # fmt: skip


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.jnl"))


def _queue() -> tuple[list[LedgerRow], object]:
    taken: list[LedgerRow] = []

    def put(row: LedgerRow) -> bool:
        taken.append(row)
        return True

    return taken, put


# A process that journals three requests, finishes two (their rows queued, never written),
# starts writing a fourth line and is killed in the middle of it.
_DYING = """
import os, signal, sys
from pathlib import Path
from modelyard.store.journal import open_journal
sys.path.insert(0, {tests!r})
from tests.unit.store.test_journal import _begun, _row
journal, _ = open_journal(Path({directory!r}), lambda row: True)
segments = [journal.begin(_begun(i, stream=i == 2)) for i in range(3)]
journal.end(segments[0], _row(0))
journal.end(segments[1], _row(1))
os.write(segments[2].fd, b'E["req_2", 1796000002.25, "2026-11')  # torn by the kill
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_process(directory: Path) -> None:
    tests = str(Path(__file__).resolve().parents[3])
    code = textwrap.dedent(_DYING.format(tests=tests, directory=str(directory)))
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=tests)
    assert done.returncode == -signal.SIGKILL


def test_a_killed_process_leaves_its_finished_rows_and_its_requests_in_flight(
    tmp_path: Path,
) -> None:
    _killed_process(tmp_path)
    journal, rows = open_journal(tmp_path, lambda row: True)
    try:
        by_id = {row[0]: row for row in rows}
        assert sorted(by_id) == ["req_0", "req_1", "req_2"]
        assert by_id["req_0"] == _row(0)  # as it was, tokens and cost included
        assert by_id["req_1"] == _row(1)
        cut = by_id["req_2"]  # begun, its row torn: in flight when killed
        assert cut[9] == INTERRUPTED
        assert (cut[0], cut[1], cut[3], cut[4], cut[5], cut[6], cut[10]) == (
            "req_2", T0 + 2, "team", "key2", "/v1/chat/completions", "chat", True,
        )  # fmt: skip
        assert cut[11:17] == (0, 0, 0, 0, 0, None)  # no tokens, no cost
        assert cut[7] is None and cut[8] is None  # no provider, no model: never answered
        assert cut[2] == "2026-11-30"
        journal.recovered()
        assert _files(tmp_path) == [f"{journal.slot}.1.jnl"]  # the recovered segment went
    finally:
        journal.close()
    assert _files(tmp_path) == []  # a graceful close with nothing outstanding: all gone


def test_a_torn_last_line_is_skipped_and_every_whole_line_kept(tmp_path: Path) -> None:
    path = tmp_path / "0.0.jnl"
    whole = b'B["req_1",1.0,null,null,"/v1/embeddings","embed",false,null]\n'
    path.write_bytes(whole + b"E[" + b"garbled\n" + b'B["req_2",2.0')
    rows = replay([path])
    assert [(r[0], r[9]) for r in rows] == [("req_1", INTERRUPTED)]


def test_a_live_process_slot_is_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    first, _ = open_journal(directory, lambda row: True)
    first.begin(_begun(1))
    second, rows = open_journal(directory, lambda row: True)
    try:
        assert (first.slot, second.slot) == (0, 1)
        assert rows == []  # slot 0's request is in flight in a live process, not interrupted
    finally:
        second.close()
        first.close()
    assert _files(directory) == ["0.0.jnl"]  # still open at close: kept for the next start
    third, rows = open_journal(directory, lambda row: True)
    assert [(r[0], r[9]) for r in rows] == [("req_1", INTERRUPTED)]
    third.recovered()
    third.close()
    assert not directory.exists()  # every slot closed cleanly or recovered: nothing left


def test_durable_batches_delete_what_they_settle_and_carry_long_requests_forward(
    tmp_path: Path,
) -> None:
    taken, put = _queue()
    journal, _ = open_journal(tmp_path, put, segment_bytes=2_000)  # type: ignore[arg-type]
    long = journal.begin(_begun(0, stream=True))  # a stream open through every rotation
    for i in range(1, 200):
        journal.end(journal.begin(_begun(i)), _row(i))
        if i % 20 == 0:
            journal.committed(20)  # every row so far durable, but request 0 still open
            assert len(_files(tmp_path)) <= 2, _files(tmp_path)
    assert len(taken) == 199
    journal.committed(19)
    # Killed now: only request 0 would come back, as interrupted.
    assert [(r[0], r[9]) for r in replay(sorted(tmp_path.glob("*.jnl")))] == [
        ("req_0", INTERRUPTED)
    ]
    journal.end(long, _row(0))
    journal.committed(1)
    assert [p.stat().st_size for p in tmp_path.glob("*.jnl")] == [0]  # emptied in place
    journal.close()
    assert _files(tmp_path) == []


def test_rows_not_yet_durable_are_replayed(tmp_path: Path) -> None:
    journal, _ = open_journal(tmp_path, lambda row: True, segment_bytes=500)
    for i in range(10):
        journal.end(journal.begin(_begun(i)), _row(i))
    journal.committed(4)  # rows 0-3 written, 4-9 still queued
    found = replay(sorted(tmp_path.glob("*.jnl")))
    assert {r[0] for r in found} >= {f"req_{i}" for i in range(4, 10)}
    assert all(r[9] == 200 for r in found)
    journal.close()
    assert _files(tmp_path) != []  # rows not written at close: kept


def test_a_row_the_full_queue_drops_is_neither_kept_nor_interrupted(tmp_path: Path) -> None:
    """The ledger's queue full (the store down for long) drops the row, as without the
    journal; the journal keeps only that the request finished, and deletes as before."""
    journal, _ = open_journal(tmp_path, lambda row: row[0] != "req_1", segment_bytes=300)
    for i in range(6):
        journal.end(journal.begin(_begun(i)), _row(i))
    found = replay(sorted(tmp_path.glob("*.jnl")))
    assert sorted(r[0] for r in found) == ["req_0", "req_2", "req_3", "req_4", "req_5"]
    assert all(r[9] == 200 for r in found)
    journal.committed(5)  # the five the queue took
    journal.close()
    assert _files(tmp_path) == []
    assert list(tmp_path.glob("*.lock")) == []  # a clean close frees its slot's file too


async def test_recovered_rows_are_written_once_however_often_replayed(
    store: Store, tmp_path: Path
) -> None:
    """Insert-or-ignore on the unique request id: rows that were written before the kill, or
    recovered by two starts (a crash during recovery), are in the ledger once."""
    _killed_process(tmp_path)
    writer = ledger_writer(store)
    try:
        await writer.write([_row(0)])  # written before the kill
        _, rows = open_journal(tmp_path, lambda row: True)
        await writer.write(rows)
        await writer.write(rows)
    finally:
        await writer.aclose()
    async with store.transaction() as session:
        records = await UsageLedger(session).records(UsageFilter())
    assert sorted((r.request_id, r.status, r.output_tokens) for r in records) == [
        ("req_0", 200, 20), ("req_1", 200, 21), ("req_2", INTERRUPTED, 0),
    ]  # fmt: skip


async def test_the_ledger_sink_reports_durable_batches_to_the_journal(tmp_path: Path) -> None:
    written: list[LedgerRow] = []

    async def write(rows: list[LedgerRow]) -> None:
        written.extend(rows)

    sink: BatchSink[LedgerRow] = BatchSink("usage ledger", write, max_batch=3)
    journal = Journal(tmp_path, 0, os.open(tmp_path / "0.lock", os.O_CREAT | os.O_RDWR), sink.put)
    sink.on_written = journal.committed
    for i in range(7):
        journal.end(journal.begin(_begun(i)), _row(i))
    await sink.flush()
    assert len(written) == 7
    journal.close()
    assert _files(tmp_path) == []
