"""Run the packaged Alembic migrations programmatically (``upgrade head``) on a connection.

Alembic's command API is synchronous; ``open_store`` calls this through ``run_sync`` so the
migration runs on the same async connection and inside its transaction. A database already at
``HEAD`` (every start but the first after an upgrade, in every worker and replica) is told by
one query, and Alembic (about 11 MB of a worker's memory) is not imported at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision. A new migration moves it; ``tests/unit/store/test_migrate.py`` holds it
# to Alembic's own head, so a stale value fails the suite rather than skipping a migration.
HEAD = "0021"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py uses this connection instead of opening its own (and so never sees the URL).
    config.attributes["connection"] = connection
    return config


def current_revisions(connection: Connection) -> list[str]:
    """The revisions the database is at (none: a new database)."""
    if not inspect(connection).has_table("alembic_version"):
        return []
    return [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]


def upgrade_head(connection: Connection) -> None:
    if current_revisions(connection) == [HEAD]:
        return
    from alembic import command

    command.upgrade(alembic_config(connection), "head")
