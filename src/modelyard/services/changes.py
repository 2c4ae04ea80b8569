"""Every replica follows the changes made on any other: keys, deployment versions, reloads.

Two paths, so that a change is seen within a second and never missed:

- pushed: PostgreSQL notifications (``store/changes.py``), sent by the writing transaction as
  it commits; each replica's listener hands a topic to its action (re-read the keys, re-read
  the deployment versions, reload the config file). A replica ignores what it sent itself.
- polled: every ``store.resync_interval_s`` the newest deployment version's id is read (the
  key refresher polls the tenancy generation the same way) and a move is followed. This is the
  safety net for a lost notification or a listener reconnecting, and the only path on SQLite.

Each action runs one at a time; a notification arriving while it runs makes it run once more
afterwards (a burst of changes costs two re-reads, not one per change).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from modelyard.services.deployments import versions_head
from modelyard.store import Store, StoreError
from modelyard.store.changes import CONFIG, DEPLOYMENTS, KEYS, RESYNC, Listener, listens
from modelyard.store.ticks import Tick, every

log = logging.getLogger("modelyard.changes")

Action = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Actions:
    keys: Action
    deployments: Action
    config: Action


class _Coalesced:
    """Runs ``work`` when kicked; kicks during a run make exactly one more run."""

    def __init__(self, name: str, work: Action) -> None:
        self._name = name
        self._work = work
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def kick(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self._work()
            except StoreError as exc:  # the next notification or poll tries again
                log.warning("following %s failed: %s", self._name, exc)
            if not self._again:
                return

    async def wait(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


class Follower:
    """Started by ``Root.open`` on a server with a store; ``aclose`` stops it."""

    def __init__(
        self, store: Store, actions: Actions, interval_s: float, tick: Tick | None = None
    ) -> None:
        self.instance = secrets.token_hex(8)  # this process, in the notifications it sends
        self._store = store
        self._runs = {
            KEYS: _Coalesced("keys", actions.keys),
            DEPLOYMENTS: _Coalesced("deployment versions", actions.deployments),
            CONFIG: _Coalesced("a config reload", actions.config),
        }
        self._tick = tick or every(interval_s)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._head = -1
        self.listener = Listener(store, self.heard) if listens(store) else None

    async def start(self) -> None:
        self._head = await versions_head(self._store)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._poll()))
        if self.listener is not None:
            self._tasks.append(loop.create_task(self.listener.run(self._stop)))

    def heard(self, topic: str, sender: str) -> None:
        """A notification (or ``RESYNC`` after the listener (re)connected)."""
        if sender == self.instance:
            return
        if topic == RESYNC:
            self._runs[KEYS].kick()
            self._runs[DEPLOYMENTS].kick()
            return
        run = self._runs.get(topic)
        if run is not None:
            run.kick()

    async def poll_once(self) -> None:
        head = await versions_head(self._store)
        if head != self._head:
            self._head = head
            self._runs[DEPLOYMENTS].kick()

    async def _poll(self) -> None:
        while True:
            await self._tick(self._stop)
            if self._stop.is_set():
                return
            try:
                await self.poll_once()
            except StoreError as exc:
                log.warning("deployment versions not re-read: %s", exc)

    async def settled(self) -> None:
        """Every action kicked so far has finished (tests)."""
        for run in self._runs.values():
            await run.wait()

    async def aclose(self) -> None:
        self._stop.set()
        for task in self._tasks:
            await task
        await self.settled()
