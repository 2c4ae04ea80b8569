"""Every store test runs against SQLite (a temp file) and a real PostgreSQL server."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from modelyard.store import Store, open_store
from tests.migrated import MigratedSqlite
from tests.unit.store.postgres import running_postgres

_databases = itertools.count(1)
_SQLITE = "sqlite+aiosqlite:///"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database: a fresh file, or a fresh database on the shared server."""
    if request.param == "sqlite":
        return f"{_SQLITE}{tmp_path / 'modelyard.db'}"
    server: str = request.getfixturevalue("postgres_url")
    name = f"t{next(_databases)}"
    conn = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
async def store(store_url: str, migrated_sqlite: MigratedSqlite) -> AsyncIterator[Store]:
    """An open store at the head revision: on SQLite a migrated file put in place (the tests of
    migrating a new database use ``store_url``), on PostgreSQL migrated by ``open_store``."""
    if store_url.startswith(_SQLITE):
        store_url = migrated_sqlite.url(Path(store_url.removeprefix(_SQLITE)))
    opened = await open_store(store_url)
    yield opened
    await opened.aclose()
