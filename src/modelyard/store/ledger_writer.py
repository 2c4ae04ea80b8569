"""How the server's ledger rows reach the database, batch by batch (``BatchSink`` batches them).

The ledger is the one table written on every request, so its writer is built for that. On
SQLite it is a child process of its own (``store/ledger_child.py``): a batch is one message to
it (the rows as they are, pickled; it converts them itself) and one line back once committed.
A thread was tried first; waiting for the GIL between its statements while the event loop
ran at full load, it woke on every GIL hand-off (some 4,000 futex calls a second under load)
and cost the loop about as much as the rest of metering together. The file's lock keeps the
child's writes and the engine's apart: each waits for the other (up to the same 30 s the
engine waits).
Elsewhere (PostgreSQL) the rows go through the store's engine, whose driver (asyncpg) needs
no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import struct
import sys
from pathlib import Path
from typing import Protocol

from modelyard.store.database import Store
from modelyard.store.errors import StoreError
from modelyard.store.usage import LedgerRow, UsageLedger, sqlite_batch

CHILD = Path(__file__).with_name("ledger_child.py")
CLOSE_TIMEOUT_S = 60  # for the batch under way at shutdown (the busy timeout is 30 s)


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
        self._child: asyncio.subprocess.Process | None = None
        # Processes let go after a failed or cancelled batch, until each has ended and been
        # waited for: the writer owns them to the end (``aclose`` waits for them too).
        self._discarded: dict[asyncio.subprocess.Process, asyncio.Task[int]] = {}

    async def write(self, rows: list[LedgerRow]) -> None:
        payload = pickle.dumps(sqlite_batch(rows), protocol=pickle.HIGHEST_PROTOCOL)
        child = self._child
        if child is None or child.returncode is not None:
            child = self._child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                str(CHILD),
                self._path,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        stdin, stdout = child.stdin, child.stdout
        if stdin is None or stdout is None:  # pragma: no cover (both are pipes, as asked)
            raise StoreError("ledger writer process has no pipes")
        try:
            stdin.write(struct.pack("<I", len(payload)) + payload)
            await stdin.drain()
            reply = await stdout.readline()
        except (OSError, asyncio.CancelledError) as exc:
            # Cancelled or broken mid-batch: its reply can no longer be told from the next
            # batch's, so this child goes (it finishes or drops the batch) and a new one starts.
            self._discard(child)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise StoreError(f"ledger writer process: {exc}") from exc
        if reply == b"ok\n":
            return
        self._discard(child)
        if reply.startswith(b"error "):
            raise StoreError(f"database error: {reply[6:].decode(errors='replace').strip()}")
        raise StoreError(f"ledger writer process ended (exit status {await child.wait()})")

    def _discard(self, child: asyncio.subprocess.Process) -> None:
        """Let ``child`` go: its input closed, it ends after the batch under way (which it
        finishes or drops), and is waited for in a task of its own, never by the loop."""
        if child.stdin is not None:
            child.stdin.close()
        if self._child is child:
            self._child = None
        if child not in self._discarded:
            ended = asyncio.get_running_loop().create_task(child.wait())
            self._discarded[child] = ended
            ended.add_done_callback(lambda _: self._discarded.pop(child, None))

    async def aclose(self) -> None:
        """End the process (after the batch under way) and those let go before."""
        child, self._child = self._child, None
        children = list(self._discarded)
        if child is not None:
            if child.stdin is not None:
                child.stdin.close()  # the child ends after the batch under way
            children.append(child)
        await asyncio.gather(*(_end(c) for c in children))


async def _end(child: asyncio.subprocess.Process) -> None:
    try:
        await asyncio.wait_for(child.wait(), CLOSE_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
