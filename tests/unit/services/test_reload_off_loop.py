"""A reload builds the new config's gateway (every provider, the catalog, the routing table) off
the event loop: the loop goes on serving while a large config is built."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.waiting import DEADLINE_S

import modelyard.services.root as root_module
from modelyard.config import load_settings
from modelyard.services.gateway import Gateway
from modelyard.services.root import Root

DEPLOYMENTS = 200  # a large config: every deployment a provider of its own


def _write(path: Path, model: str) -> None:
    config = {
        "local": {"enabled": False},
        "providers": {
            f"p{i}": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}
            for i in range(DEPLOYMENTS)
        },
        "deployments": {
            f"chat{i}": {"targets": [{"provider": f"p{i}", "model": model}]}
            for i in range(DEPLOYMENTS)
        },
    }
    path.write_text(yaml.safe_dump(config))


async def test_the_loop_runs_while_a_reload_builds_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "modelyard.yaml"
    _write(path, "m1")
    root = await Root.open(Gateway(load_settings(path), None), config_path=path)
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    built_in: list[int] = []
    loop_ran = threading.Event()
    ran_meanwhile: list[bool] = []

    def building(*args: Any, **kwargs: Any) -> Gateway:
        built_in.append(threading.get_ident())
        if threading.get_ident() != loop_thread:
            # The loop, free, runs this callback while the build goes on (a build on the loop
            # itself could not wait for it).
            loop.call_soon_threadsafe(loop_ran.set)
            ran_meanwhile.append(loop_ran.wait(DEADLINE_S))
        return Gateway(*args, **kwargs)

    monkeypatch.setattr(root_module, "Gateway", building)
    _write(path, "m2")
    try:
        assert await root.reload(path)
        assert built_in and built_in[0] != loop_thread
        assert ran_meanwhile == [True]
        assert root.gateway.table.resolve(f"chat{DEPLOYMENTS - 1}").targets[0].model == "m2"
    finally:
        await root.aclose()


async def test_a_broken_config_built_off_the_loop_is_refused_and_the_old_one_serves(
    tmp_path: Path,
) -> None:
    path = tmp_path / "modelyard.yaml"
    _write(path, "m1")
    root = await Root.open(Gateway(load_settings(path), None), config_path=path)
    config = yaml.safe_load(path.read_text())
    config["deployments"]["chat0"]["targets"][0]["provider"] = "nowhere"
    path.write_text(yaml.safe_dump(config))
    try:
        assert not await root.reload(path)  # the build's ConfigError, raised in its thread
        assert root.gateway.table.resolve("chat0").targets[0].provider == "p0"
    finally:
        await root.aclose()
