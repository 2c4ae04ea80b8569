"""Persistence: SQLAlchemy 2 (async) models, one module per aggregate, Alembic migrations.

SQLite in the data directory by default; PostgreSQL via ``postgresql+asyncpg://`` URLs. The store
holds no business rules: it records and reads rows, and the services decide what they mean.
"""

from modelyard.store.database import Store, database_url, open_store, redact
from modelyard.store.errors import StoreError, VersionConflict

__all__ = ["Store", "StoreError", "VersionConflict", "database_url", "open_store", "redact"]
