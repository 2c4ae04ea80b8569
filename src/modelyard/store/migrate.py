"""Run the packaged Alembic migrations programmatically (``upgrade head``) on a connection.

Alembic's command API is synchronous; ``open_store`` calls this through ``run_sync`` so the
migration runs on the same async connection and inside its transaction.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # env.py uses this connection instead of opening its own (and so never sees the URL).
    config.attributes["connection"] = connection
    return config


def upgrade_head(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
