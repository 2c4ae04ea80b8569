"""Writes off the request path: a bounded queue drained in batches by one background task.

``put`` never waits and never touches the database: a request hands its record over and goes
on. The writer flushes when ``max_batch`` records are waiting or its tick comes (every
``interval_s``; a test passes a ``tick`` it drives itself, so nothing waits on the clock),
retries a failed batch with backoff (keeping it, up to ``max_retries``), and on ``aclose``
drains everything queued. What a hard crash can lose is what sits in the queue: at most the
records of the last ``interval_s`` plus a batch being retried. When the queue is full (the
database is down for long), new records are refused and counted in ``dropped``: memory stays
bounded and the count is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from modelyard.store.errors import StoreError
from modelyard.store.ticks import Tick, every

T = TypeVar("T")
log = logging.getLogger("modelyard.store")


class BatchSink(Generic[T]):
    def __init__(
        self,
        name: str,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        max_queue: int = 50_000,
        max_batch: int = 500,
        interval_s: float = 0.2,
        tick: Tick | None = None,
    ) -> None:
        self.name = name
        self._write = write
        self._queue: deque[T] = deque()
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._tick = tick or every(interval_s)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one batch in flight: the loop and flush() never overlap
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.dropped = 0
        self.max_retries = 5
        # Told how many records each durable batch held, in queue order (the ledger's journal).
        self.on_written: Callable[[int], None] | None = None
        self.retry_backoff_s = 0.5

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def put(self, item: T) -> bool:
        """Queue ``item``; False (and counted) when the queue is full or the sink closed."""
        if self._closing or len(self._queue) >= self._max_queue:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("%s: queue full, %d record(s) dropped so far", self.name, self.dropped)
            return False
        self._queue.append(item)
        if len(self._queue) >= self._max_batch:
            self._wake.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._queue)

    def oldest(self) -> T | None:
        """The record waiting longest, if any (for the writer's lag)."""
        return self._queue[0] if self._queue else None

    async def flush(self) -> None:
        """Write everything queued now (tests, shutdown)."""
        while self._queue:
            await self._write_batch()

    async def aclose(self) -> None:
        """Stop taking records and write what is queued.

        The background task is not cancelled mid-batch but let finish the batch it is writing:
        a writer that hands the batch to another process (the SQLite ledger writer) would commit
        it anyway, and the flush below would then write it a second time."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await task
        try:
            await self.flush()
        except StoreError as exc:
            log.error("%s: %d record(s) not written at shutdown: %s", self.name, self.pending, exc)

    async def _run(self) -> None:
        while not self._closing:
            await self._tick(self._wake)
            if self._closing:
                return  # aclose writes the rest
            self._wake.clear()
            # What is queued now, then more only while whole batches wait. Writing until the
            # queue was empty chased the records arriving during each write: under load that
            # made a batch of three or four rows per round trip rather than one per interval,
            # and the per-batch work (a message, a reply, a transaction) ran a few hundred
            # times a second.
            while self._queue:
                try:
                    await self._write_batch()
                except StoreError as exc:
                    log.error("%s: batch not written, %s; retrying later", self.name, exc)
                    break
                except Exception:  # a bug in a writer must not end the task and strand the queue
                    log.exception("%s: batch not written; retrying later", self.name)
                    break
                if len(self._queue) < self._max_batch:
                    break

    async def _write_batch(self) -> None:
        async with self._lock:
            if self._queue:
                await self._write_head()

    async def _write_head(self) -> None:
        batch = [self._queue[i] for i in range(min(self._max_batch, len(self._queue)))]
        for attempt in range(self.max_retries + 1):
            try:
                await self._write(batch)
                break
            except StoreError:
                if attempt == self.max_retries:
                    raise
                await asyncio.sleep(self.retry_backoff_s * 2**attempt)
        for _ in batch:
            self._queue.popleft()
        self.written += len(batch)
        if self.on_written is not None:
            self.on_written(len(batch))
