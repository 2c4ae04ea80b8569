"""``Root.open`` builds the gateway it serves from the store (a rolled-back deployment, a router
kept in the store) in a worker thread, as a reload does: start-up's other tasks (the embedded
model's supervisor, the store's listener) go on running meanwhile, and what start-up does and
how it fails stay as they were.

Here rather than under services/ because it needs a store."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import modelyard.services.root as root_module
from modelyard.config import ConfigError, load_settings
from modelyard.config.errors import ConfigIssue
from modelyard.config.loader import settings_from_data
from modelyard.services.deployments import rollback, sync_versions
from modelyard.services.gateway import Gateway
from modelyard.services.root import Root
from modelyard.services.routers import store_router
from modelyard.store import Store, open_store
from tests.unit.store.test_stored_router_serving import _artifact, _config, _served_version
from tests.waiting import DEADLINE_S

REFUSAL = ConfigError([ConfigIssue("deployments.chat.targets[0].provider", "unknown provider")])
UP = {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}


def _write(path: Path, provider: str, model: str) -> None:
    config = {
        "local": {"enabled": False},
        "providers": {"p": UP, "old": UP},
        "deployments": {"chat": {"targets": [{"provider": provider, "model": model}]}},
    }
    path.write_text(yaml.safe_dump(config))


def _served(root: Root) -> str:
    return root.gateway.table.resolve("chat").targets[0].model


class _Builds:
    """Stands in for ``Gateway`` in ``services.root``: notes the thread of each build and, off
    the loop, waits for the loop to run a callback first (a build on the loop itself could not:
    it would block the loop it waits for); then builds, or raises ``refusal``, as a config the
    build refuses does."""

    def __init__(self, refusal: ConfigError | None = None) -> None:
        self.refusal = refusal
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.threads: list[int] = []
        self.ran_meanwhile: list[bool] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Gateway:
        self.threads.append(threading.get_ident())
        if threading.get_ident() != self.loop_thread:
            ran = threading.Event()
            self.loop.call_soon_threadsafe(ran.set)
            self.ran_meanwhile.append(ran.wait(DEADLINE_S))
        if self.refusal is not None:
            raise self.refusal
        return Gateway(*args, **kwargs)

    def off_the_loop(self) -> bool:
        return bool(self.threads) and self.loop_thread not in self.threads


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    """The start's wiring does not depend on the backend: SQLite only here. ``Root.open`` takes
    the store over (its ``aclose`` closes it); closing again does nothing."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'modelyard.db'}")
    yield store
    await store.aclose()


async def _rolled_back(store: Store, path: Path) -> None:
    """``chat`` recorded at version 1 (model m1 on provider ``old``) and 2 (m2 on ``p``), then
    rolled back to 1: the config at ``path`` says m2, the store m1."""
    _write(path, "old", "m1")
    await sync_versions(store, load_settings(path))
    _write(path, "p", "m2")
    await sync_versions(store, load_settings(path))
    await rollback(store, load_settings(path), "chat", 1)


async def test_a_rollback_served_from_the_start_is_built_off_the_loop(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "modelyard.yaml"
    await _rolled_back(sqlite_store, path)
    early = Gateway(load_settings(path), None)
    builds = _Builds()
    monkeypatch.setattr(root_module, "Gateway", builds)
    root = await Root.open(early, sqlite_store, config_path=path)
    try:
        assert builds.off_the_loop() and builds.ran_meanwhile == [True]
        assert _served(root) == "m1"  # the rollback, served from the first request
    finally:
        await root.aclose()


async def test_a_rollback_the_build_refuses_is_logged_and_the_config_served(
    sqlite_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The build's ``ConfigError``, raised in its thread, is handled as before: said once, and
    the start goes on with the config's own deployments."""
    path = tmp_path / "modelyard.yaml"
    await _rolled_back(sqlite_store, path)
    early = Gateway(load_settings(path), None)
    builds = _Builds(REFUSAL)
    monkeypatch.setattr(root_module, "Gateway", builds)
    with caplog.at_level(logging.ERROR, "modelyard.server"):
        root = await Root.open(early, sqlite_store, config_path=path)
    try:
        assert builds.off_the_loop()
        assert _served(root) == "m2"
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [f"rolled-back deployments not applied, serving the config: {REFUSAL}"]
    finally:
        await root.aclose()


async def test_a_router_from_the_store_is_built_in_off_the_loop(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored, _ = await store_router(sqlite_store, "mine", _artifact(1))
    early = Gateway(settings_from_data(_config({"name": "mine"})), None)
    builds = _Builds()
    monkeypatch.setattr(root_module, "Gateway", builds)
    root = await Root.open(early, sqlite_store)
    try:
        assert builds.off_the_loop() and builds.ran_meanwhile == [True]
        assert _served_version(root) == stored.version
        assert json.loads(stored.provenance)["seed"] == 1
    finally:
        await root.aclose()


async def test_a_router_build_the_config_fails_fails_the_start_with_its_message(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store_router(sqlite_store, "mine", _artifact(1))
    early = Gateway(settings_from_data(_config({"name": "mine"})), None)
    builds = _Builds(REFUSAL)
    monkeypatch.setattr(root_module, "Gateway", builds)
    with pytest.raises(ConfigError) as refused:
        await Root.open(early, sqlite_store)
    assert refused.value is REFUSAL and builds.off_the_loop()
    await early.aclose()
