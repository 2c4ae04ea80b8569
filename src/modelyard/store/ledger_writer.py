"""How the server's ledger rows reach the database, batch by batch (``BatchSink`` batches them).

The ledger is the one table written on every request, so its writer is built for that. On
SQLite it has a connection of its own, in a thread of its own: a batch is one job for that
thread (BEGIN IMMEDIATE, a few multi-row INSERTs, COMMIT), where going through the async
engine cost several hand-offs between the event loop and the driver's thread per batch and
about twice the CPU per row. The file's lock keeps its writes and the engine's apart: each
waits for the other (up to the same 30 s the engine waits). Elsewhere (PostgreSQL) the rows go
through the store's engine, whose driver (asyncpg) needs no thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from modelyard.store.database import Store
from modelyard.store.errors import StoreError
from modelyard.store.usage import LedgerRow, UsageLedger, sqlite_inserts

BUSY_TIMEOUT_S = 30


class LedgerWriter(Protocol):
    async def write(self, rows: list[LedgerRow]) -> None:
        """Write the rows in one transaction, or raise ``StoreError`` having written none."""
        ...

    async def aclose(self) -> None: ...


def ledger_writer(store: Store) -> LedgerWriter:
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return SqliteLedgerWriter(url.database)
    return EngineLedgerWriter(store)


class EngineLedgerWriter:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def write(self, rows: list[LedgerRow]) -> None:
        async with self._store.transaction() as session:
            await UsageLedger(session).append(rows)

    async def aclose(self) -> None:
        return None


class SqliteLedgerWriter:
    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelyard-ledger")
        self._conn: sqlite3.Connection | None = None

    async def write(self, rows: list[LedgerRow]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, self._write, rows)
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")  # the file is in WAL mode already
            self._conn = conn
        return self._conn

    def _write(self, rows: list[LedgerRow]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement, params in sqlite_inserts(rows):
                conn.execute(statement, params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
