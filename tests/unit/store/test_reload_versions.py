"""The server applies deployment versions on reload; a failing store leaves the running config."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession

import modelyard.services.root as root_module
from modelyard.config import load_settings
from modelyard.services.deployments import change, rollback, served_overrides, sync_versions
from modelyard.services.gateway import Gateway
from modelyard.services.root import Root
from modelyard.store import Store, StoreError, open_store
from modelyard.tenancy.limits_memory import MemoryLimiter


def _write(path: Path, model: str) -> None:
    config = {
        "local": {"enabled": False},
        "providers": {"p": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"chat": {"targets": [{"provider": "p", "model": model}]}},
    }
    path.write_text(yaml.safe_dump(config))


def _served(state: Root) -> str:
    return state.gateway.table.resolve("chat").targets[0].model


class BrokenStore(Store):
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        raise StoreError("database error: connection refused")
        yield  # pragma: no cover


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    """The server wiring does not depend on the backend: SQLite only here."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'modelyard.db'}")
    yield store
    await store.aclose()


async def _serving_m2_with_m1_rolled_back_to(store: Store, path: Path) -> Root:
    """A root serving version 2 (model m2) of ``chat``, whose rollback to version 1 (m1) the
    store has just recorded (the root has not re-read it yet)."""
    _write(path, "m1")
    await sync_versions(store, load_settings(path))
    _write(path, "m2")
    state = Root(Gateway(load_settings(path), None), MemoryLimiter(), store, None)
    assert await state.reload(path)
    assert _served(state) == "m2"
    await rollback(store, load_settings(path), "chat", 1)
    return state


async def test_reload_serves_a_rollback_until_the_config_changes(
    sqlite_store: Store, tmp_path: Path
):
    path = tmp_path / "modelyard.yaml"
    state = await _serving_m2_with_m1_rolled_back_to(sqlite_store, path)
    assert await state.reload(path)
    assert _served(state) == "m1"
    _write(path, "m3")
    assert await state.reload(path)
    assert _served(state) == "m3"
    await state.gateway.aclose()


async def test_a_store_error_on_reload_keeps_the_running_config(
    sqlite_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "modelyard.yaml"
    _write(path, "m1")
    broken = BrokenStore(sqlite_store.engine)
    state = Root(Gateway(load_settings(path), None), MemoryLimiter(), broken, None)
    _write(path, "m2")
    assert not await state.reload(path)
    assert _served(state) == "m1"
    assert "reload refused, the running config stays: version store" in caplog.text
    await state.gateway.aclose()


async def test_a_replica_following_a_change_serves_it_as_the_changer_does(
    sqlite_store: Store, tmp_path: Path
):
    """A re-point (``change:*``) and a rollback are served alike by the replica that made
    them (``sync_versions``) and by one that only heard of them (``served_overrides``)."""
    path = tmp_path / "modelyard.yaml"
    _write(path, "m1")
    settings = load_settings(path)
    await sync_versions(sqlite_store, settings)
    current = settings.deployments["chat"]
    target = current.targets[0].model_copy(update={"model": "m9"})
    repointed = current.model_copy(update={"targets": [target]})
    await change(sqlite_store, settings, "chat", repointed, "repoint")
    made = await sync_versions(sqlite_store, settings)
    heard = await served_overrides(sqlite_store, settings)
    assert made["chat"].targets[0].model == heard["chat"].targets[0].model == "m9"
    await rollback(sqlite_store, settings, "chat", 1)
    assert "chat" in await served_overrides(sqlite_store, settings)


def _write_breaker(path: Path, failures: int) -> None:
    config = {
        "local": {"enabled": False},
        "providers": {"p": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": {"chat": {"targets": [{"provider": "p", "model": "m1"}]}},
        "routing": {"breaker": {"failures": failures}, "latency_alpha": 0.5},
    }
    path.write_text(yaml.safe_dump(config))


async def test_a_reload_gives_the_targets_its_breaker_settings_and_they_keep_their_state(
    sqlite_store: Store, tmp_path: Path
):
    path = tmp_path / "modelyard.yaml"
    _write_breaker(path, failures=5)
    state = Root(Gateway(load_settings(path), None), MemoryLimiter(), sqlite_store, None)
    health = state.gateway.router.health.of("p/m1")
    for _ in range(3):
        health.failure()
    _write_breaker(path, failures=3)
    assert await state.reload(path)
    same = state.gateway.router.health.of("p/m1")
    assert same is health and same.settings.failures == 3
    assert same.consecutive_failures == 3  # the count carried over
    same.failure()
    assert same.state == "open"  # the fourth failure opens it at the new threshold of 3
    await state.gateway.aclose()


async def test_a_refused_reload_leaves_the_breaker_settings(sqlite_store: Store, tmp_path: Path):
    path = tmp_path / "modelyard.yaml"
    _write_breaker(path, failures=5)
    broken = BrokenStore(sqlite_store.engine)
    state = Root(Gateway(load_settings(path), None), MemoryLimiter(), broken, None)
    _write_breaker(path, failures=2)
    assert not await state.reload(path)
    assert state.gateway.router.health.of("p/m1").settings.failures == 5
    await state.gateway.aclose()


async def test_following_a_rollback_builds_the_gateway_off_the_loop(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A replica that hears of another's rollback builds the gateway it then serves in a
    thread, as a reload does: the loop goes on serving meanwhile."""
    path = tmp_path / "modelyard.yaml"
    state = await _serving_m2_with_m1_rolled_back_to(sqlite_store, path)
    built_in: list[int] = []

    def building(*args: Any, **kwargs: Any) -> Gateway:
        built_in.append(threading.get_ident())
        return Gateway(*args, **kwargs)

    monkeypatch.setattr(root_module, "Gateway", building)
    await state.follow_deployments()
    assert built_in and built_in[0] != threading.get_ident()
    assert _served(state) == "m1"
    await state.gateway.aclose()
