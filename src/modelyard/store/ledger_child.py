"""The SQLite ledger's writer process (see ``store.ledger_writer``). Run by file path with
``python -I``: it imports only the standard library.

Protocol on its standard streams, one batch at a time: the parent sends a 4-byte little-endian
length and a pickle of ``(statement, time_column, rows, upsert)``: a one-row INSERT, the index
of the column holding seconds since the epoch, the rows as the parent holds them, and the
rollup's one-group upsert. The child turns that column into SQLAlchemy's SQLite DATETIME text
(``sqlite_time``: work taken off the server's event loop), runs the statement for every row and
the upsert once per (hour or day, project, key, deployment, model) group of the batch
(``rollup``), in one transaction (BEGIN IMMEDIATE ... COMMIT), and answers ``ok`` or
``error <message>`` on one line.
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
import json
import os
import pickle
import signal
import sqlite3
import struct
import sys
from bisect import bisect_left
from datetime import UTC, datetime
from typing import Any

BUSY_TIMEOUT_S = 30
# (ledger INSERT, index of its time column, rows, rollup upsert): see ``main``'s docstring.
# (the row INSERT, the index of the time to convert, the rows, the rollup's upsert, the index
# of the request id)
Batch = tuple[str, int, list[tuple[Any, ...]], str, int]
# The batch's request ids already in the ledger, as one JSON array: one statement for every
# batch size. An ``IN (?, ?, ...)`` list is a statement of its own per batch size (1 to 500), and
# the sqlite3 module keeps its last 128 prepared statements, each holding its list: that grew
# this process from 17 to 25 MB over a long run. SQLite still searches the unique index.
_WRITTEN = (
    "SELECT request_id FROM usage_records WHERE request_id IN (SELECT value FROM json_each(?))"
)

# The hourly rollup (``store.usage_rollup``): the latency histogram's upper bounds in ms; a
# latency falls in the first bucket whose bound it does not exceed, the last bucket (index
# ``len(LATENCY_BOUNDS_MS)``) holds everything above 30 s.
LATENCY_BOUNDS_MS = (
    10,
    25,
    50,
    100,
    200,
    350,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    5000,
    10000,
    30000,
)
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
ALL_KEYS = "*"  # the rollup's key for its rows summed over every key (no key id is "*")
# ``LedgerRow`` positions the rollup reads (``tests/unit/store`` holds them to the fields).
_AT, _PROJECT, _KEY, _DEPLOYMENT, _MODEL, _STATUS = 1, 3, 4, 6, 8, 9
_INPUT, _OUTPUT, _CACHED, _REASONING, _COST, _LATENCY = 11, 12, 13, 15, 16, 17
_SUMS = 7  # requests, errors, input, output, cached input, reasoning tokens, cost


def rollup(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Ledger rows summed per (grain, period, project, key, deployment, model): per hour
    (grain ``h``, ``YYYY-MM-DD HH``) and per day (``d``, ``YYYY-MM-DD``), each per key and again
    with every key as ``ALL_KEYS``: each group's upsert values (``store.usage_rollup.COLUMNS``'
    order). Missing dimensions are ``""`` (the key columns are not null, so they conflict)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    width = _SUMS + LATENCY_BUCKETS
    for row in rows:
        hour = _second_text(int(row[_AT]) // 3600 * 3600)[:13]
        project, deployment, model = row[_PROJECT] or "", row[_DEPLOYMENT] or "", row[_MODEL] or ""
        bucket = _SUMS + bisect_left(LATENCY_BOUNDS_MS, row[_LATENCY])
        values = (1, row[_STATUS] >= 400, row[_INPUT], row[_OUTPUT], row[_CACHED],
                  row[_REASONING], row[_COST] or 0)  # fmt: skip
        for grain, period in (("h", hour), ("d", hour[:10])):
            for key in (row[_KEY] or "", ALL_KEYS):
                group = (grain, period, project, key, deployment, model)
                sums = groups.get(group)
                if sums is None:
                    sums = groups[group] = [0] * width
                for i, value in enumerate(values):
                    sums[i] += value
                sums[bucket] += 1
    return [(*group, *sums) for group, sums in groups.items()]


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


def new_rows(rows: list[tuple[Any, ...]], written: set[str], rid_at: int) -> list[tuple[Any, ...]]:
    """``rows`` whose request id (at ``rid_at``) is neither in ``written`` nor earlier in
    ``rows``: a batch retried after an unacknowledged commit must count once, in the ledger
    (its unique request id) and in the rollup (summed from the rows really inserted)."""
    seen = set(written)
    fresh: list[tuple[Any, ...]] = []
    for row in rows:
        if row[rid_at] not in seen:
            seen.add(row[rid_at])
            fresh.append(row)
    return fresh


def _written(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    return {rid for (rid,) in conn.execute(_WRITTEN, (json.dumps(ids),))}


def write_batch(conn: sqlite3.Connection, batch: Batch) -> None:
    statement, at, rows, upsert, rid_at = batch
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = new_rows(rows, _written(conn, [row[rid_at] for row in rows]), rid_at)
        params = sqlite_params(at, rows)
        groups = rollup(rows)
        conn.executemany(statement, params)
        conn.executemany(upsert, groups)
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
                write_batch(conn, pickle.loads(body))  # noqa: S301 (our parent's own pipe)
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
