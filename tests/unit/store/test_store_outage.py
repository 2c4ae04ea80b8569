"""A replica rides out a PostgreSQL outage and recovers without a restart: nothing hangs,
keys are served from the ring it holds, a reload is refused, readiness says so (and stays
200), and once the server is back a rollback made there is followed again."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest
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
from tests.unit.store.postgres import running_postgres_server
from tests.waiting import DEADLINE_S, eventually

pytestmark = pytest.mark.postgres  # it starts a server of its own, to stop it

OPERATOR = Principal("cli", role="operator")


def _write(path: Path, model: str) -> None:
    config = {
        "local": {"enabled": False},
        "store": {"resync_interval_s": 0.2},
        "providers": {"p": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"chat": {"targets": [{"provider": "p", "model": model}]}},
    }
    path.write_text(yaml.safe_dump(config))


async def _store_is(root: Root, state: str) -> bool | None:
    # Each probe is bounded by the readiness timeout; one that hung would fail ``eventually``
    # at its deadline (a fixed bound here failed once on a loaded machine).
    states = await root.states()
    return (states.store == state and states.ready) or None


async def _serves(root: Root, model: str) -> bool | None:
    return root.gateway.table.resolve("chat").targets[0].model == model or None


def _knows(root: Root, secret: str) -> bool:
    try:
        root.keys.authenticate(secret)
    except AuthenticationFailed:
        return False
    return True


async def test_a_replica_rides_out_a_store_outage(tmp_path: Path) -> None:
    path = tmp_path / "modelyard.yaml"
    with running_postgres_server() as server:
        _write(path, "m1")
        cli = await open_store(server.url)
        await sync_versions(cli, load_settings(path))  # version 1: m1
        await cli.aclose()
        _write(path, "m2")
        root = await Root.open(
            Gateway(load_settings(path), None), await open_store(server.url), config_path=path
        )
        try:
            assert root.admin is not None
            await root.admin.create_project(OPERATOR, "p", None, Limits())
            _, fresh = await root.admin.create_key(OPERATOR, KeySpec("p"))
            server.stop()
            await eventually(functools.partial(_store_is, root, "unreachable"), "store down")
            assert _knows(root, fresh.secret)  # the ring it holds
            async with asyncio.timeout(DEADLINE_S):  # refused, not hung
                assert not await root.reload(path)
            assert await _serves(root, "m2")
            server.start()
            await eventually(functools.partial(_store_is, root, "ok"), "store back")
            cli = await open_store(server.url)
            try:
                await rollback(cli, load_settings(path), "chat", 1)
            finally:
                await cli.aclose()
            await eventually(functools.partial(_serves, root, "m1"), "the rollback followed")
        finally:
            await root.aclose()
