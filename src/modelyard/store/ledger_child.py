"""The SQLite ledger's writer process (see ``store.ledger_writer``). Run by file path with
``python -I``: it imports only the standard library.

Protocol on its standard streams, one batch at a time: the parent sends a 4-byte little-endian
length and a pickle of ``[(statement, parameters), ...]``; the child runs them in one
transaction (BEGIN IMMEDIATE ... COMMIT) and answers ``ok`` or ``error <message>`` on one line.
It exits when its standard input closes, after the batch under way. It ignores SIGINT and
SIGTERM, which a terminal's Ctrl-C or a service manager sends to the whole process group: the
server's graceful shutdown still has rows to hand it, and closes its input when done.
"""

from __future__ import annotations

import pickle
import signal
import sqlite3
import struct
import sys

BUSY_TIMEOUT_S = 30


def _write(conn: sqlite3.Connection, statements: list[tuple[str, list[object]]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement, params in statements:
            conn.execute(statement, params)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def main(path: str) -> int:
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
