"""Replicas on one store follow each other's changes: a rollback recorded anywhere, a key
revoked anywhere, a config reload on one of them.

On PostgreSQL the periodic re-read is set to an hour, so only the notifications can carry the
change (and the listener must come back by itself after its connection is killed); on SQLite,
which has no notifications, the re-read is frequent and carries it alone."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import yaml

from modelyard.config import load_settings
from modelyard.core.errors import AuthenticationFailed
from modelyard.services.deployments import rollback, sync_versions
from modelyard.services.gateway import Gateway
from modelyard.services.root import Root
from modelyard.services.tenancy import KeySpec
from modelyard.store import open_store
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import Limits
from tests.waiting import eventually

OPERATOR = Principal("cli", role="operator")


def _write(path: Path, model: str, url: str) -> None:
    interval = 3600 if url.startswith("postgresql") else 0.05
    config = {
        "local": {"enabled": False},
        "store": {"resync_interval_s": interval},
        "providers": {"p": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"chat": {"targets": [{"provider": "p", "model": model}]}},
    }
    path.write_text(yaml.safe_dump(config))


def _served(root: Root) -> str:
    return root.gateway.table.resolve("chat").targets[0].model


async def _serves(root: Root, model: str) -> bool | None:
    return _served(root) == model or None


@contextlib.asynccontextmanager
async def _replicas(url: str, path: Path, n: int = 2) -> AsyncIterator[list[Root]]:
    roots: list[Root] = []
    try:
        for _ in range(n):
            gateway = Gateway(load_settings(path), None)
            roots.append(await Root.open(gateway, await open_store(url), config_path=path))
        for root in roots:  # listening before the test changes anything
            listener = root.follower.listener if root.follower is not None else None
            if listener is not None:
                await asyncio.wait_for(listener.connected.wait(), 120)
        yield roots
    finally:
        for root in roots:
            await root.aclose()


async def _true(value: bool) -> bool | None:
    return value or None


async def test_a_rollback_recorded_elsewhere_is_served_by_every_replica(
    store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "modelyard.yaml"
    _write(path, "m1", store_url)
    cli = await open_store(store_url)
    await sync_versions(cli, load_settings(path))  # version 1: m1
    _write(path, "m2", store_url)
    async with _replicas(store_url, path) as replicas:
        assert [_served(r) for r in replicas] == ["m2", "m2"]
        await rollback(cli, load_settings(path), "chat", 1)  # what `deployments rollback` does
        for root in replicas:
            await eventually(functools.partial(_serves, root, "m1"), "the rollback served")
    await cli.aclose()


async def test_a_key_revoked_on_one_replica_is_refused_by_the_other(
    store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "modelyard.yaml"
    _write(path, "m1", store_url)
    async with _replicas(store_url, path) as (one, other):
        assert one.admin is not None
        await one.admin.create_project(OPERATOR, "p", None, Limits())
        key, fresh = await one.admin.create_key(OPERATOR, KeySpec("p"))
        await eventually(lambda: _true(_knows(other, fresh.secret)), "the new key served")
        await one.admin.revoke_key(OPERATOR, key.id)
        await eventually(lambda: _true(not _knows(other, fresh.secret)), "the key refused")


def _knows(root: Root, secret: str) -> bool:
    try:
        root.keys.authenticate(secret)
    except AuthenticationFailed:
        return False
    return True


async def test_a_reload_on_one_replica_reloads_the_others(
    postgres_url: str, tmp_path: Path
) -> None:
    url = await _database(postgres_url)
    path = tmp_path / "modelyard.yaml"
    _write(path, "m1", url)
    async with _replicas(url, path) as (one, other):
        _write(path, "m3", url)  # the one config file (a ConfigMap) changed under both
        assert await one.reload(path)  # SIGHUP to one replica only
        await eventually(lambda: _true(_served(other) == "m3"), "the other replica reloaded")


async def test_the_listener_comes_back_after_its_connection_is_killed(
    postgres_url: str, tmp_path: Path
) -> None:
    url = await _database(postgres_url)
    path = tmp_path / "modelyard.yaml"
    _write(path, "m1", url)
    await sync_versions(cli := await open_store(url), load_settings(path))
    _write(path, "m2", url)
    async with _replicas(url, path, 1) as (root,):
        server = postgres_url.replace("postgresql+asyncpg", "postgresql")
        conn = await asyncpg.connect(server)
        try:  # the replica's listening connection
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND application_name = 'modelyard-changes'",
                url.rsplit("/", 1)[1],
            )
        finally:
            await conn.close()
        assert killed == 1
        await rollback(cli, load_settings(path), "chat", 1)
        await eventually(lambda: _true(_served(root) == "m1"), "the rollback served")
    await cli.aclose()


async def _database(server: str) -> str:
    """A fresh database (its own notifications and versions) on the shared server."""
    name = f"f{uuid.uuid4().hex}"
    conn = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server.rsplit("/", 1)[0] + f"/{name}"
