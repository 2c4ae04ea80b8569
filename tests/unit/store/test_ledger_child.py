"""The SQLite ledger's writer process keeps nothing of its parent but its standard streams, and
nothing per batch size."""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

from modelyard.store import open_store
from modelyard.store.ledger_child import write_batch
from modelyard.store.ledger_writer import CHILD
from modelyard.store.usage import ledger_row, sqlite_batch
from tests.unit.store.test_usage_rollup import _records


def _socket_inodes(pid: int) -> set[str]:
    links = (os.readlink(entry) for entry in Path(f"/proc/{pid}/fd").iterdir())
    return {link for link in links if link.startswith("socket:")}


def test_the_writer_closes_inherited_descriptors_and_ends_with_its_input(tmp_path: Path) -> None:
    # uvloop, the server's loop, spawns the writer without closing the server's descriptors:
    # passing one explicitly is the same situation with the standard library.
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        inode = f"socket:[{os.fstat(listening.fileno()).st_ino}]"
        child = subprocess.Popen(
            [sys.executable, "-I", str(CHILD), str(tmp_path / "ledger.db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=[listening.fileno()],
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            # Any batch gets one line back; by then the child is past its start.
            payload = pickle.dumps(("SELECT 1", 0, [], "SELECT 1", 0))
            child.stdin.write(struct.pack("<I", len(payload)) + payload)
            child.stdin.flush()
            assert child.stdout.readline().startswith((b"ok", b"error "))
            assert inode not in _socket_inodes(child.pid)
        finally:
            child.stdin.close()  # what the parent's death does too
            assert child.wait(timeout=60) == 0


class _Recorded:
    """A connection that notes every statement text it is given."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.statements = conn, set[str]()

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self.statements.add(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        self.statements.add(sql)
        return self.conn.executemany(sql, rows)


async def _migrated(path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    await store.aclose()


def test_batches_of_every_size_run_the_same_few_statements(tmp_path: Path) -> None:
    # The sqlite3 module keeps its last 128 prepared statements: one per batch size would hold
    # a statement per size (up to 500 of them), megabytes of them in a long run.
    path = tmp_path / "ledger.db"
    asyncio.run(_migrated(path))
    rows = [ledger_row(r) for r in _records(seed=3, count=820)]
    conn = sqlite3.connect(path, isolation_level=None)
    recorded = _Recorded(conn)
    db = cast(sqlite3.Connection, recorded)
    start = 0
    for size in range(1, 41):
        write_batch(db, sqlite_batch(rows[start : start + size]))
        start += size
    write_batch(db, sqlite_batch(rows[:40]))  # a retried batch counts once
    assert len(recorded.statements) <= 6, sorted(recorded.statements)
    (count,) = conn.execute("SELECT count(*) FROM usage_records").fetchone()
    every_key = "SELECT sum(requests) FROM usage_rollup WHERE grain = 'h' AND key_id = '*'"
    (summed,) = conn.execute(every_key).fetchone()
    conn.close()
    assert count == summed == 820
