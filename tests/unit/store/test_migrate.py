"""``upgrade_head`` skips Alembic for a database at ``HEAD``, and ``HEAD`` is Alembic's head."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from modelyard.store.migrate import HEAD, alembic_config, current_revisions, upgrade_head


def test_head_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD]


def test_a_new_database_is_migrated_and_then_left_alone(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        assert current_revisions(conn) == []
        upgrade_head(conn)
        assert current_revisions(conn) == [HEAD]
        conn.execute(text("CREATE TABLE marker (x INTEGER)"))
    with engine.begin() as conn:
        upgrade_head(conn)  # at HEAD: nothing runs
        assert conn.execute(text("SELECT count(*) FROM marker")).scalar() == 0
    engine.dispose()


def test_an_older_database_is_upgraded(tmp_path: Path) -> None:
    from alembic import command

    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0015")
    with engine.begin() as conn:
        upgrade_head(conn)
        assert current_revisions(conn) == [HEAD]
    engine.dispose()


def test_opening_a_current_store_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    script = (
        "import asyncio, sys\n"
        "from modelyard.store import open_store\n"
        "async def main():\n"
        "    store = await open_store(sys.argv[1])\n"
        "    await store.aclose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    first = subprocess.run(
        [sys.executable, "-c", script, url], check=True, capture_output=True, text=True
    )
    again = subprocess.run(
        [sys.executable, "-c", script, url], check=True, capture_output=True, text=True
    )
    assert first.stdout.split() == ["True"], first.stderr  # a new database: migrated
    assert again.stdout.split() == ["False"], again.stderr
