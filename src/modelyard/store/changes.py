"""Change notifications between replicas sharing one PostgreSQL store (LISTEN/NOTIFY).

A write that other replicas must see (a key or project, a deployment version, a config reload)
calls ``announce`` inside its own transaction: PostgreSQL delivers the notification when that
transaction commits, and never when it rolls back, so a replica is never told of a change it
cannot read yet, and no writer can forget to tell (the store's writers do it themselves).
``Listener`` holds one connection of its own (asyncpg, outside the engine's pool) that LISTENs
and hands each payload on; it reconnects after a failure and then asks for a full re-read,
since notifications sent while it was away are lost. On SQLite (one node) nothing is sent:
several workers there rely on the periodic re-read.

Why PostgreSQL and not Redis pub/sub: the store is where the changes are written, so the
notification is part of the write's commit (Redis would be a second write after the commit,
lost when the writer dies between them, and sent by the CLI too); both deliver in well under
a millisecond on loopback (``bench/replicas.py`` measures it), far below the one-second goal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.store.database import Store

log = logging.getLogger("modelyard.store")

CHANNEL = "modelyard_changes"
KEYS = "keys"
DEPLOYMENTS = "deployments"
CONFIG = "config"
RESYNC = "resync"  # not sent: what the listener reports after (re)connecting
_CHECK_S = 5.0  # how often a quiet listening connection is checked to be alive
_MAX_BACKOFF_S = 5.0
# How it shows in pg_stat_activity.
_NAMED: Final[Mapping[str, str]] = MappingProxyType({"application_name": "modelyard-changes"})


async def announce(session: AsyncSession, topic: str, sender: str = "") -> None:
    """Tell every listening replica about ``topic`` when this transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        payload = f"{topic} {sender}".strip()
        await session.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})


async def announce_now(store: Store, topic: str, sender: str = "") -> None:
    """``announce`` in a transaction of its own (a config reload writes nothing else)."""
    if store.engine.url.get_backend_name() == "postgresql":
        async with store.transaction() as session:
            await announce(session, topic, sender)


def listens(store: Store) -> bool:
    return store.engine.url.get_backend_name() == "postgresql"


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """LISTENs on ``CHANNEL`` and calls ``on_change(topic, sender)``; after each (re)connect it
    calls ``on_change(RESYNC, "")``. Runs until ``stop`` is set; never raises."""

    def __init__(
        self,
        store: Store,
        on_change: Callable[[str, str], None],
        timeout_s: float = 2.0,
    ) -> None:
        self._dsn = _dsn(store.engine.url)
        self._on_change = on_change
        self._timeout_s = timeout_s
        self.connected = asyncio.Event()  # tests wait on it

    def _payload(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        topic, _, sender = payload.partition(" ")
        self._on_change(topic, sender)

    async def run(self, stop: asyncio.Event) -> None:
        # Imported here, on PostgreSQL only: the driver's ~12 MB stay out of SQLite servers.
        import asyncpg  # type: ignore[import-untyped]

        backoff = 0.1
        while not stop.is_set():
            try:
                connecting = asyncpg.connect(self._dsn, server_settings=dict(_NAMED))
                conn = await asyncio.wait_for(connecting, self._timeout_s)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                if backoff == 0.1:
                    log.warning("change notifications unavailable, re-reading by polling: %s", exc)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            try:
                await conn.add_listener(CHANNEL, self._payload)
                self.connected.set()
                self._on_change(RESYNC, "")  # whatever was sent while nobody listened
                if backoff > 0.1:
                    log.warning("change notifications available again")
                backoff = 0.1
                await self._hold(conn, stop)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                backoff = 0.2  # lost: reconnect at once, and log the recovery
            finally:
                self.connected.clear()
                await _close(conn)

    async def _hold(self, conn: Any, stop: asyncio.Event) -> None:
        """Until ``stop``; a dead connection (a silent network, a restarted server) is found
        by a bounded query every few seconds and raises."""
        while not stop.is_set():
            await _wait(stop, _CHECK_S)
            if not stop.is_set():
                await asyncio.wait_for(conn.fetchval("SELECT 1"), self._timeout_s)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return


async def _close(conn: Any) -> None:
    import asyncpg

    try:
        await asyncio.wait_for(conn.close(), 1.0)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()
