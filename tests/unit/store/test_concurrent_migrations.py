"""Several replicas starting at once on one fresh PostgreSQL database all come up migrated.

Three processes open the store at the same moment (each waits for a line on its input, and the
test writes to all three at once, so their migrations overlap); without the advisory lock around
``alembic upgrade`` the losers' ``CREATE TABLE`` fails and the replica does not start.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from modelyard.store.migrate import alembic_config
from tests.waiting import wait_until

_CHILD = """
import asyncio, sys
from modelyard.store import open_store

async def main(url, ready):
    open(ready, "w").close()  # imported: waiting for the start
    sys.stdin.readline()  # all three start migrating together: each is told at once
    store = await open_store(url)
    await store.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""
_names = itertools.count(1)


async def _fresh_database(server: str) -> str:
    name = f"race{next(_names)}"
    conn = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server.rsplit("/", 1)[0] + f"/{name}"


async def test_three_replicas_migrating_at_once_all_start(
    postgres_url: str, tmp_path: Path
) -> None:
    url = await _fresh_database(postgres_url)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, url, str(tmp_path / f"ready{i}")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(3)
    ]
    # Every child has imported SQLAlchemy and alembic before the start: they migrate together.
    wait_until(lambda: all((tmp_path / f"ready{i}").exists() for i in range(3)), "3 ready", 120)
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")  # the start
        child.stdin.flush()
    outputs = [c.communicate(timeout=120)[0].decode(errors="replace") for c in children]
    assert [c.returncode for c in children] == [0, 0, 0], "\n".join(outputs)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        version = await conn.fetchval("SELECT version_num FROM alembic_version")
        count = await conn.fetchval("SELECT count(*) FROM alembic_version")
    finally:
        await conn.close()
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert (version, count) == (head, 1)
