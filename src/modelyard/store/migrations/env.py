"""Alembic environment: always handed a live connection by ``modelyard.store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

# Imported for their side effect: each registers its tables on Base.metadata.
import modelyard.store.agents
import modelyard.store.audit
import modelyard.store.background
import modelyard.store.deployment_versions
import modelyard.store.evals
import modelyard.store.responses
import modelyard.store.routers
import modelyard.store.shadow_records
import modelyard.store.tenancy
import modelyard.store.usage  # noqa: F401
from modelyard.store.base import Base

# Any constant: gateway workers starting at once migrate one after another on PostgreSQL.
_MIGRATION_LOCK = 0x6D6F64656C79


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("modelyard migrations run through modelyard.store.migrate only")
_run(connection)
