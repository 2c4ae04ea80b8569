"""Deployment versions over the store: recorded on change only, rollback overrides the config
until the config changes, and concurrent workers never duplicate a version."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from modelyard.config import Settings
from modelyard.config.loader import settings_from_data
from modelyard.core.errors import InvalidRequest, NotFound
from modelyard.services.build import with_overrides
from modelyard.services.deployments import history, rollback, summary, sync_versions
from modelyard.store import Store, open_store


def _settings(
    chat_model: str, *, retry: int = 3, providers: tuple[str, ...] = ("a", "b")
) -> Settings:
    data: dict[str, Any] = {
        "local": {"enabled": False},
        "providers": {
            p: {"type": "openai_compatible", "base_url": f"http://127.0.0.1:9/{p}"}
            for p in providers
        },
        "deployments": {
            "chat": {
                "targets": [{"provider": "a", "model": chat_model}],
                "retry": {"attempts": retry},
            },
            "embed": {"targets": [{"provider": "a", "model": "emb"}]},
        },
    }
    return settings_from_data(data)


async def _sources(store: Store, name: str) -> list[tuple[int, str]]:
    return [(v.version, v.source) for v in await history(store, name)]


async def test_sync_records_a_version_only_when_the_spec_changes(store: Store):
    assert await sync_versions(store, _settings("m1")) == {}
    assert await sync_versions(store, _settings("m1")) == {}
    assert await _sources(store, "chat") == [(1, "config")]
    await sync_versions(store, _settings("m1", retry=5))  # any field of the spec counts
    await sync_versions(store, _settings("m2", retry=5))
    assert await _sources(store, "chat") == [(1, "config"), (2, "config"), (3, "config")]
    assert await _sources(store, "embed") == [(1, "config")]
    assert summary((await history(store, "chat"))[-1]) == "failover: a/m2"


async def test_rollback_overrides_the_config_until_the_config_changes(store: Store):
    await sync_versions(store, _settings("m1"))
    await sync_versions(store, _settings("m2"))
    added = await rollback(store, _settings("m2"), "chat", 1)
    assert (added.version, added.source) == (3, "rollback:1")

    overrides = await sync_versions(store, _settings("m2"))  # config unchanged since
    assert list(overrides) == ["chat"]
    assert overrides["chat"].targets[0].model == "m1"
    served = with_overrides(_settings("m2"), overrides)
    assert served.deployments["chat"].targets[0].model == "m1"
    assert served.deployments["embed"] == _settings("m2").deployments["embed"]
    assert await _sources(store, "chat") == [(1, "config"), (2, "config"), (3, "rollback:1")]

    assert await sync_versions(store, _settings("m3")) == {}  # the operator edits: config wins
    assert await _sources(store, "chat") == [
        (1, "config"),
        (2, "config"),
        (3, "rollback:1"),
        (4, "config"),
    ]


async def test_editing_the_config_back_to_an_older_spec_is_a_change(store: Store):
    await sync_versions(store, _settings("m1"))
    await sync_versions(store, _settings("m2"))
    await rollback(store, _settings("m2"), "chat", 1)
    # Back to m1 by hand: differs from the latest config version (m2), so the config records it.
    assert await sync_versions(store, _settings("m1")) == {}
    assert (await history(store, "chat"))[-1].source == "config"


async def test_rollback_refuses_unknown_names_versions_and_gone_providers(store: Store):
    await sync_versions(store, _settings("m1"))
    with pytest.raises(NotFound, match="no deployment 'nope'"):
        await rollback(store, _settings("m1"), "nope", 1)
    with pytest.raises(NotFound, match=r"no version 7 \(versions: 1..1\)"):
        await rollback(store, _settings("m1"), "chat", 7)
    moved = (
        _settings("m1")
        .deployments["chat"]
        .model_copy(
            update={
                "targets": [
                    _settings("m1")
                    .deployments["chat"]
                    .targets[0]
                    .model_copy(update={"provider": "b"})
                ]
            }
        )
    )
    on_b = _settings("m1").model_copy(update={"deployments": {"chat": moved}})
    await sync_versions(store, on_b)
    without_b = _settings("m1", providers=("a",))
    with pytest.raises(InvalidRequest, match="providers no longer configured: b"):
        await rollback(store, without_b, "chat", 2)


async def test_a_rolled_back_spec_with_a_gone_provider_is_not_served(store: Store):
    on_b = settings_from_data(
        {
            "local": {"enabled": False},
            "providers": {"b": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9"}},
            "deployments": {"chat": {"targets": [{"provider": "b", "model": "x"}]}},
        }
    )
    await sync_versions(store, on_b)
    await sync_versions(store, _settings("m1"))
    await rollback(store, _settings("m1"), "chat", 1)
    assert await sync_versions(store, _settings("m1", providers=("a",))) == {}


async def test_concurrent_workers_record_each_version_once(store_url: str, store: Store):
    workers = [await open_store(store_url) for _ in range(5)]
    try:
        await asyncio.gather(*(sync_versions(w, _settings("m1")) for w in workers))
        await asyncio.gather(*(sync_versions(w, _settings("m2")) for w in workers))
    finally:
        for w in workers:
            await w.aclose()
    assert await _sources(store, "chat") == [(1, "config"), (2, "config")]
    assert await _sources(store, "embed") == [(1, "config")]


async def test_a_spec_this_release_cannot_read_is_not_served(store: Store):
    await sync_versions(store, _settings("m1"))
    await sync_versions(store, _settings("m2"))
    await rollback(store, _settings("m2"), "chat", 1)
    async with store.transaction() as session:
        # As if an older release had recorded a field this one no longer has.
        await session.execute(
            text("UPDATE deployment_versions SET spec = :s WHERE name = 'chat' AND version = 3"),
            {"s": '{"targets": [], "gone_field": 1}'},
        )
    assert await sync_versions(store, _settings("m2")) == {}
    assert summary((await history(store, "chat"))[-1]) == "(a spec this release can no longer read)"
    with pytest.raises(InvalidRequest, match="unreadable"):
        await rollback(store, _settings("m2"), "chat", 3)
