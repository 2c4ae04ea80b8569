"""The SQLite ledger's writer process (see ``store.ledger_writer``). Run by file path with
``python -I``: it imports only the standard library.

Protocol on its standard streams, one batch at a time: the parent sends a 4-byte little-endian
length and a pickle of ``(statement, time_column, rows)``: a one-row INSERT, the index of the
column holding seconds since the epoch, and the rows as the parent holds them. The child turns
that column into SQLAlchemy's SQLite DATETIME text (``sqlite_time``: work taken off the
server's event loop), runs the statement for every row in one transaction (BEGIN IMMEDIATE ...
COMMIT) and answers ``ok`` or ``error <message>`` on one line.
It exits when its standard input closes, after the batch under way. It ignores SIGINT and
SIGTERM, which a terminal's Ctrl-C or a service manager sends to the whole process group: the
server's graceful shutdown still has rows to hand it, and closes its input when done.

It closes every descriptor it inherited beyond its standard streams first: the server's event
loop (uvloop) spawns it without closing them, so it would otherwise hold the server's listening
socket (after a crash of the server, "address already in use") and its upstream connections.
Its input is the one tie to its parent: when the parent dies, by any signal, it reads the end of
the file and exits.
"""

from __future__ import annotations

import functools
import os
import pickle
import signal
import sqlite3
import struct
import sys
from datetime import UTC, datetime
from typing import Any

BUSY_TIMEOUT_S = 30
Batch = tuple[str, int, list[tuple[Any, ...]]]


def sqlite_time(seconds: float) -> str:
    """Seconds since the epoch as SQLAlchemy's SQLite DATETIME text (UTC, naive, to the
    microsecond), so the ORM reads the rows back exactly as if it had written them."""
    whole, micros = divmod(round(seconds * 1_000_000), 1_000_000)
    return f"{_second_text(whole)}.{micros:06d}"


@functools.lru_cache(maxsize=16)
def _second_text(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%d %H:%M:%S")


def sqlite_params(at: int, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``rows`` with column ``at`` (seconds since the epoch) as ``sqlite_time`` text."""
    return [(*row[:at], sqlite_time(row[at]), *row[at + 1 :]) for row in rows]


def _fd_limit() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 1 << 20


def _write(conn: sqlite3.Connection, batch: Batch) -> None:
    statement, at, rows = batch
    params = sqlite_params(at, rows)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(statement, params)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def main(path: str) -> int:
    os.closerange(3, _fd_limit())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")  # the file is in WAL mode already
    read, out = sys.stdin.buffer.read, sys.stdout.buffer
    try:
        while len(head := read(4)) == 4:
            (size,) = struct.unpack("<I", head)
            body = read(size)
            if len(body) != size:
                break  # the parent is gone mid-batch: nothing of it was written
            try:
                _write(conn, pickle.loads(body))  # noqa: S301 (our parent's own pipe)
            except sqlite3.Error as exc:
                out.write(b"error " + " ".join(str(exc).split()).encode() + b"\n")
            else:
                out.write(b"ok\n")
            out.flush()
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
