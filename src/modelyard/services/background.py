"""Background responses: runs that outlive the request that started them.

A run is a task of this process with its event log (one SSE event per entry, its index the
event's ``sequence_number``), the latest ``Response`` object and a row in ``background_runs``
(written when it is queued and when it ends), so that:

- polling reads the live run here, or the row from any other process;
- ``?stream=true&starting_after=N`` replays the log after N and follows it while it runs (from
  the stored events once it has ended);
- ``cancel`` cancels the task: the upstream stream is closed (no further tokens generated or
  billed; the ledger row counts what was generated) and the response ends ``cancelled``;
- the HTTP client leaving changes nothing (the task is not the request's);
- a stopping gateway cancels its runs and records them ``failed`` ("the gateway stopped"), and
  a starting one records as ``failed`` the unfinished runs of a gateway that died
  (``fail_orphans``: runs of this host whose ``serve`` process is another, or whose worker is
  dead), never leaving one ``in_progress`` forever.

The wire shapes are the server's: this module moves bytes and JSON objects it does not read
beyond ``status``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelyard.core.errors import InvalidRequest, RateLimited
from modelyard.store import Store
from modelyard.store.background import BackgroundRun, BackgroundRuns
from modelyard.store.responses import Responses

log = logging.getLogger("modelyard.background")
JSON = dict[str, Any]
FINAL = frozenset({"completed", "incomplete", "failed", "cancelled"})
SERVE_PID_ENV = "MODELYARD_SERVE_PID"
STOPPED = "the gateway stopped before this background response finished; create it again"
# Runs of one process at once: a background run outlives its request, so the in-flight bound
# (``server.max_in_flight``) does not hold it; this does.
MAX_RUNS = 256
RESTARTED = "the gateway restarted before this background response finished; create it again"


def runner_id() -> str:
    """This process, as ``background_runs.runner`` records it: host, serve pid, worker pid."""
    return f"{socket.gethostname()}/{os.environ.get(SERVE_PID_ENV, '')}/{os.getpid()}"


@dataclass(slots=True)
class LiveRun:
    """One background response under way in this process."""

    id: str
    owner: str
    body: JSON
    events: list[bytes] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _moved: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, frames: bytes) -> None:
        """Append SSE text (one or more events) to the log and wake the followers."""
        if not frames:
            return
        self.events.extend(split_events(frames))
        if self.body["status"] == "queued":
            self.body = {**self.body, "status": "in_progress"}
        self._wake()

    def end(self, body: JSON) -> None:
        self.body = body
        self.done.set()
        self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def follow(self, after: int) -> AsyncIterator[bytes]:
        """The events after sequence number ``after`` (-1: all), then the new ones until the
        run ends."""
        index = after + 1
        while True:
            moved = self._moved
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.done.is_set():
                return
            await moved.wait()


def split_events(frames: bytes) -> list[bytes]:
    """SSE text → one entry per event (events end with a blank line; JSON data has none)."""
    return [part + b"\n\n" for part in frames.split(b"\n\n") if part]


Work = Callable[[LiveRun], Awaitable[JSON]]


class BackgroundRunner:
    """The background runs of one app (``Root.background``)."""

    def __init__(self, store: Store | None) -> None:
        self._store = store
        self._runs: dict[str, LiveRun] = {}
        self._runner = runner_id()

    def find(self, run_id: str, owner: str) -> LiveRun | None:
        run = self._runs.get(run_id)
        return run if run is not None and run.owner == owner else None

    async def start(self, run_id: str, owner: str, queued: JSON, work: Work) -> LiveRun:
        """Record ``queued`` and run ``work`` in a task of its own; ``work`` returns the final
        ``Response`` object (it is called with the run, to ``add`` its events)."""
        store = self._need()
        if len(self._runs) >= MAX_RUNS:
            raise RateLimited(
                f"background: this gateway process runs {MAX_RUNS} background responses "
                "already; retry when some have ended",
                param="background",
                code="gateway_busy",
                retry_after=1.0,
            )
        row = BackgroundRun(
            run_id, owner, "queued", self._runner, orjson.dumps(queued).decode(), None
        )
        async with store.transaction() as session:
            await BackgroundRuns(session).put(row)
        run = LiveRun(run_id, owner, queued)
        self._runs[run_id] = run
        run.task = asyncio.get_running_loop().create_task(self._run(run, work), name=run_id)
        return run

    async def _run(self, run: LiveRun, work: Work) -> None:
        try:
            final = await work(run)
        except asyncio.CancelledError:
            final = run.body if run.body["status"] in FINAL else _ended(run.body, "cancelled")
        except Exception as exc:  # a bug must end the run, not leave it in_progress
            log.exception("background response %s failed", run.id)
            final = _failed(run.body, f"internal error: {type(exc).__name__}")
        run.end(final)
        try:
            await self._record(run)
        finally:
            self._runs.pop(run.id, None)

    async def _record(self, run: LiveRun) -> None:
        if self._store is None:
            return
        events = b"".join(run.events).decode()
        async with self._store.transaction() as session:
            await BackgroundRuns(session).finish(
                run.id, run.body["status"], orjson.dumps(run.body).decode(), events
            )

    async def cancel(self, run_id: str, owner: str) -> JSON | None:
        """Cancel a run of this process and wait until it has ended: its final body. None when
        this process does not run it."""
        run = self.find(run_id, owner)
        if run is None or run.task is None:
            return None
        run.task.cancel()
        await self._settled(run, "cancelled", None)
        return run.body

    async def stored(self, run_id: str, owner: str) -> BackgroundRun | None:
        if self._store is None:
            return None
        async with self._store.transaction() as session:
            return await BackgroundRuns(session).get(run_id, owner)

    async def fail_orphans(self, save: Callable[[str, JSON], Awaitable[None]]) -> int:
        """Record as ``failed`` the unfinished runs a dead gateway left; ``save`` stores each
        failed body as the response (owner, body). Returns how many."""
        if self._store is None:
            return 0
        async with self._store.transaction() as session:
            found = [r for r in await BackgroundRuns(session).unfinished() if _orphaned(r.runner)]
        for row in found:
            body = _failed(orjson.loads(row.body), RESTARTED)
            async with self._store.transaction() as session:
                stored = await Responses(session).get(row.id, row.owner)
            if stored is None:  # else it ended and was stored, and only this row lagged
                await save(row.owner, body)
            else:
                body = orjson.loads(stored.body)
            async with self._store.transaction() as session:
                await BackgroundRuns(session).finish(
                    row.id, "failed", orjson.dumps(body).decode(), row.events
                )
            log.warning("background response %s: marked failed (its gateway is gone)", row.id)
        return len(found)

    async def aclose(self) -> None:
        """Stop every run: each ends ``failed`` (the gateway stopped) and is recorded."""
        runs = list(self._runs.values())
        for run in runs:
            if run.task is not None:
                run.task.cancel(STOPPED)
        for run in runs:
            await self._settled(run, "failed", STOPPED)

    async def _settled(self, run: LiveRun, status: str, message: str | None) -> None:
        """Wait for a cancelled run's task; one cancelled before it ever ran (its coroutine
        never started, so nothing in it ended the run) is ended and recorded here."""
        if run.task is not None:
            await asyncio.gather(asyncio.shield(run.task), return_exceptions=True)
        if not run.done.is_set():
            run.end(_failed(run.body, message) if message else _ended(run.body, status))
            await self._record(run)
            self._runs.pop(run.id, None)

    def _need(self) -> Store:
        if self._store is None:
            raise InvalidRequest(
                "background: background responses need a store; this server keeps none",
                param="background",
            )
        return self._store


def _orphaned(runner: str) -> bool:
    """Whether ``runner`` is a process of a gateway that is gone (only this host's runs are
    judged: another host's gateway judges its own)."""
    host, _, rest = runner.partition("/")
    serve, _, pid = rest.partition("/")
    mine = runner_id().split("/")
    if host != mine[0]:
        return False
    if serve != mine[1]:
        return True  # another ``serve`` ran it: that gateway is gone or is not ours to judge
    if pid == mine[2]:
        return False  # this process (another app in it, in tests)
    return not (pid.isdigit() and _alive(int(pid)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ended(body: JSON, status: str) -> JSON:
    return {**body, "status": status, "completed_at": None}


def _failed(body: JSON, message: str) -> JSON:
    error = {"code": "server_error", "message": message}
    return {**_ended(body, "failed"), "error": error, "completed_at": None}
