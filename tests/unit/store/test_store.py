"""The store itself: migrations from empty, the deployment_versions repository, URLs, errors."""

from __future__ import annotations

import socket
from datetime import UTC

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.store import (
    Store,
    StoreError,
    VersionConflict,
    database_url,
    open_store,
    redact,
)
from modelyard.store.base import Base
from modelyard.store.deployment_versions import DeploymentVersions, NewVersion
from modelyard.store.evals import EvalResultRow, EvalRunRow  # noqa: F401
from modelyard.store.migrate import alembic_config
from modelyard.store.portal_sessions import PortalSessionRow  # noqa: F401  (compared below)
from modelyard.store.responses import ResponseRow  # noqa: F401  (compared below)
from modelyard.store.routers import RouterArtifactRow  # noqa: F401  (compared below)
from modelyard.store.shadow_records import ShadowRecordRow  # noqa: F401  (compared below)
from modelyard.store.tenancy import ApiKeyRow  # noqa: F401
from modelyard.store.usage import UsageRow  # noqa: F401


def _new(name: str, spec: str = '{"a":1}', source: str = "config") -> NewVersion:
    return NewVersion(name, spec, f"hash-of-{spec}", source)


async def test_migrations_create_the_schema_from_empty_and_rerun_as_a_no_op(store_url: str):
    for _ in range(2):
        store = await open_store(store_url)
        async with store.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        await store.aclose()
        assert {"deployment_versions", "shadow_records", "alembic_version"} <= tables
        assert head == [(ScriptDirectory.from_config(alembic_config()).get_current_head(),)]


async def test_revision_0005_upgrades_when_the_index_was_already_dropped_by_hand(store_url: str):
    def upgrade_by_hand(conn: Connection) -> set[str | None]:
        command.upgrade(alembic_config(conn), "0004")
        conn.execute(text("DROP INDEX ix_usage_records_request_id"))
        command.upgrade(alembic_config(conn), "head")
        return {ix["name"] for ix in inspect(conn).get_indexes("usage_records")}

    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            indexes = await conn.run_sync(upgrade_by_hand)
    finally:
        await engine.dispose()
    assert "ix_usage_records_request_id" not in indexes
    assert "ix_usage_records_created_at" in indexes


async def test_versions_are_numbered_per_name(store: Store):
    async with store.transaction() as session:
        repo = DeploymentVersions(session)
        first = await repo.append(_new("chat"), 0)
        await repo.append(_new("embed"), 0)
        second = await repo.append(_new("chat", '{"a":2}', "rollback:1"), 1)
    assert (first.version, second.version) == (1, 2)
    assert first.created_at.tzinfo is not None
    assert first.created_at.utcoffset() == UTC.utcoffset(None)
    async with store.transaction() as session:
        repo = DeploymentVersions(session)
        history = await repo.history("chat")
        latest = await repo.latest("chat")
        latest_config = await repo.latest("chat", "config")
        missing = await repo.get("chat", 3)
        embed = await repo.get("embed", 1)
    assert [(v.version, v.source) for v in history] == [(1, "config"), (2, "rollback:1")]
    assert latest is not None and latest.version == 2 and latest.spec == '{"a":2}'
    assert latest_config is not None and latest_config.version == 1
    assert missing is None
    assert embed is not None and embed.name == "embed"


async def test_appending_after_a_stale_read_is_a_version_conflict(store: Store):
    async with store.transaction() as session:
        await DeploymentVersions(session).append(_new("chat"), 0)
    with pytest.raises(VersionConflict):
        async with store.transaction() as session:
            repo = DeploymentVersions(session)
            await repo.append(_new("embed"), 0)
            # This writer read "no versions of chat" before another recorded version 1.
            await repo.append(_new("chat", '{"a":2}'), 0)
    async with store.transaction() as session:
        repo = DeploymentVersions(session)
        # The whole unit of work rolled back: nothing of "embed", chat unchanged.
        assert await repo.history("embed") == []
        assert [v.spec for v in await repo.history("chat")] == ['{"a":1}']


def test_the_url_comes_from_env_then_config_then_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MODELYARD_DATABASE_URL", raising=False)
    assert database_url(None, tmp_path) == f"sqlite+aiosqlite:///{tmp_path}/modelyard.db"
    configured = "postgresql+asyncpg://u:pw@db/modelyard"
    assert database_url(configured, tmp_path) == configured
    monkeypatch.setenv("MODELYARD_DATABASE_URL", "sqlite+aiosqlite:///elsewhere.db")
    assert database_url(configured, tmp_path) == "sqlite+aiosqlite:///elsewhere.db"


def test_redact_hides_the_password():
    shown = redact("postgresql+asyncpg://user:s3cret@db.internal:5432/modelyard")
    assert "s3cret" not in shown
    assert shown == "postgresql+asyncpg://user:***@db.internal:5432/modelyard"


async def test_an_unreachable_database_is_a_store_error_without_the_password():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(StoreError) as info:
            await open_store(f"postgresql+asyncpg://user:s3cret@127.0.0.1:{port}/db")
    assert "s3cret" not in str(info.value)
    assert "user:***@127.0.0.1" in str(info.value)


async def test_a_malformed_url_is_a_store_error():
    with pytest.raises(StoreError, match="not a database URL"):
        await open_store("not a url")


async def test_the_migrations_match_the_models(store: Store):
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )
    assert diff == []
