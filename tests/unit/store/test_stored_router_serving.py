"""A deployment naming a router in the store (``router: {name: ...}``), on SQLite and
PostgreSQL: ``Root.open`` reads it when the store opens (the gateway ``create_app`` built
before could not), a reload takes up a newer version, a pinned ``version`` stays, and a name
the store lacks (or a server without a store) fails the start naming the field.

Here rather than under services/ because it needs the store fixtures of this folder."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from modelyard.config import ConfigError
from modelyard.config.loader import settings_from_data
from modelyard.routing import features as F
from modelyard.routing.model import dumps
from modelyard.routing.training import Example, fit
from modelyard.services.gateway import Gateway
from modelyard.services.root import Root
from modelyard.services.routers import store_router, stored_router, stored_routers
from modelyard.store import Store

HARD = ("integral", "proof", "theorem", "derivative", "lemma")
EASY = ("capital", "colour", "animal", "greeting", "weather")


def _artifact(seed: int) -> bytes:
    rng = random.Random(seed)
    examples = []
    for i in range(200):
        hard = i % 2 == 0
        text = f"please help with the {rng.choice(HARD if hard else EASY)} number {i}"
        examples.append(Example(text, F.facts(text), hard))
    header = {"data_sha256": f"{seed:064d}", "weak_model": "w", "strong_model": "s", "seed": seed}
    return dumps(fit(examples, header, seed=seed))


def _config(router: dict[str, Any]) -> dict[str, Any]:
    upstream = {"type": "openai_compatible", "base_url": "http://127.0.0.1:9", "api_key": "k"}
    targets = [{"provider": "up", "model": "big"}, {"provider": "up", "model": "small"}]
    auto = {"strategy": "learned", "router": {"strong": "up/big", **router}, "targets": targets}
    return {
        "local": {"enabled": False},
        "providers": {"up": upstream},
        "deployments": {"auto": auto},
    }


def _served_version(root: Root) -> str | None:
    learned = root.gateway.table.resolve("auto").learned
    return learned.model.version if learned else None


async def test_a_stored_router_is_served_and_a_reload_takes_up_a_new_version(
    store: Store, tmp_path: Path
) -> None:
    first, added = await store_router(store, "mine", _artifact(1))
    again, added_again = await store_router(store, "mine", _artifact(1))
    assert added and not added_again and again.version == first.version
    assert json.loads(first.provenance)["seed"] == 1 and first.data_sha256 == f"{1:064d}"
    config = tmp_path / "modelyard.json"
    config.write_text(json.dumps(_config({"name": "mine"})))
    early = Gateway(settings_from_data(_config({"name": "mine"})), None)
    assert early.table.resolve("auto").learned is None  # the store is not open yet
    root = await Root.open(early, store)
    try:
        assert _served_version(root) == first.version
        second, _ = await store_router(store, "mine", _artifact(2))
        assert second.version != first.version
        assert await root.reload(config)
        assert _served_version(root) == second.version
        assert (await stored_router(store, "mine")).version == second.version
        assert [r.version for r in await stored_routers(store)] == [
            first.version,
            second.version,
        ]
        config.write_text(json.dumps(_config({"name": "mine", "version": first.version})))
        assert await root.reload(config)
        assert _served_version(root) == first.version
        config.write_text(json.dumps(_config({"name": "mine", "version": "nope"})))
        assert not await root.reload(config)  # refused: the running router stays
        assert _served_version(root) == first.version
    finally:
        await root.aclose()


async def test_a_name_the_store_lacks_fails_the_start(store: Store) -> None:
    gateway = Gateway(settings_from_data(_config({"name": "absent"})), None)
    with pytest.raises(ConfigError, match=r"deployments\.auto\.router\.name.*absent"):
        await Root.open(gateway, store)


async def test_a_stored_router_without_a_store_fails_the_start() -> None:
    gateway = Gateway(settings_from_data(_config({"name": "mine"})), None)
    with pytest.raises(ConfigError, match=r"in the store, and none is open"):
        await Root.open(gateway, None)
    await gateway.aclose()


def test_the_config_names_one_router_source() -> None:
    with pytest.raises(ConfigError, match=r"artifact \(a file\) or name"):
        settings_from_data(_config({}))
    with pytest.raises(ConfigError, match="version goes with name"):
        settings_from_data(_config({"artifact": "/x.router", "version": "abc"}))
