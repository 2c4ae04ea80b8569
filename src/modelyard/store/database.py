"""The engine and session factory, the URL (config, then ``MODELYARD_DATABASE_URL``) and
migrations at open. Never on the request path: services read it at startup and on reload."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from modelyard.store.errors import StoreError, VersionConflict
from modelyard.store.migrate import upgrade_head

DATABASE_URL_ENV = "MODELYARD_DATABASE_URL"
DB_FILE = "modelyard.db"


def database_url(configured: str | None, data: Path) -> str:
    """``MODELYARD_DATABASE_URL``, else the config's ``store.url``, else SQLite in ``data``."""
    return os.environ.get(DATABASE_URL_ENV) or configured or f"sqlite+aiosqlite:///{data / DB_FILE}"


def redact(url: str) -> str:
    """The URL with its password masked, for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


class Store:
    """One engine per process; ``transaction()`` is a unit of work that commits or rolls back."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self._sessions.begin() as session:
                yield session
        except IntegrityError as exc:
            raise VersionConflict("a concurrent writer recorded the same row") from exc
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"database error: {_first_line(exc)}") from exc

    async def ping(self) -> bool:
        """Whether the database answers (``/readyz``). SQLite is a local file: it does, and a
        query would take its write lock (``BEGIN IMMEDIATE``) from the ledger's writer."""
        if self.engine.url.get_backend_name() == "sqlite":
            return True
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True

    async def aclose(self) -> None:
        await self.engine.dispose()


async def open_store(url: str) -> Store:
    """Connect and bring the schema to the newest revision."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {redact(url)}") from exc
    engine = _engine(parsed)
    store = Store(engine)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_head)
    except (SQLAlchemyError, OSError) as exc:
        await engine.dispose()
        raise StoreError(f"cannot open the store at {redact(url)}: {_first_line(exc)}") from exc
    except BaseException:
        await engine.dispose()
        raise
    return store


def _engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})
    # SQLite's deferred transactions turn two concurrent read-then-write units into a
    # "database is locked" error; BEGIN IMMEDIATE takes the write lock up front so they queue.
    event.listen(engine.sync_engine, "connect", _no_driver_transactions)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    # Write-ahead logging: readers never block the ledger's writer and a commit is an append,
    # not a rewrite; NORMAL syncs at checkpoints, so a power cut (not a crash) may lose the
    # last commits while the database stays consistent.
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
