"""A migrated SQLite database for a test, without running the migrations again for each test.

Bringing a new database to the head revision runs every Alembic migration (some 70 statements):
about 55 ms of CPU, paid by some 200 tests of the fast run for an app or a store they then
use. ``MigratedSqlite`` has the real ``open_store`` migrate one template file per test process,
the first time a test asks, and copies that file into place for each test after: the copy is
the very file a migration writes (a closed WAL database is one file), and ``open_store`` finds
it at the head revision, as it would any current database. Tests about migrating a new
database (``tests/unit/store``'s ``store_url``, ``test_migrate.py``) do not use it.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any


class MigratedSqlite:
    """Places migrated SQLite databases (see the module's docstring)."""

    def __init__(self, directory: Path) -> None:
        self._template = directory / "migrated.db"
        self._made = False
        self._lock = threading.Lock()  # tests' apps may ask from their own threads

    def url(self, path: Path) -> str:
        """Put a database at the head revision at ``path`` (a new file) and return its URL."""
        with self._lock:
            if not self._made:
                _run(_migrate(self._template))
                leftovers = [p for p in self._template.parent.iterdir() if p != self._template]
                assert not leftovers, f"the template database is not one file: {leftovers}"
                self._made = True
        assert not path.exists(), f"{path} exists: a placed database must be new"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._template, path)
        return f"sqlite+aiosqlite:///{path}"


async def _migrate(path: Path) -> None:
    from modelyard.store import open_store  # here: the root conftest imports this module

    store = await open_store(f"sqlite+aiosqlite:///{path}")
    await store.aclose()  # the last connection out checkpoints and deletes the WAL


def _run(work: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to its end on a loop of its own, in a thread of its own: the caller may
    be inside a running event loop (an async fixture)."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(work)
        except BaseException as exc:  # handed to the caller below, not swallowed
            failure.append(exc)

    thread = threading.Thread(target=target, name="migrate-template")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
