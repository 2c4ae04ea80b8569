"""Agent versions across restarts and reloads (``AgentBook.sync``), on SQLite and PostgreSQL:
a changed config agent gets a new live version, an unchanged one keeps the version the admin
API made live, a removed one stops being served, and racing workers record one version."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelyard.agents.definitions import AgentRef
from modelyard.config.schema import Settings
from modelyard.core.errors import InvalidRequest, NotFound
from modelyard.services.agents import AgentBook
from modelyard.store import Store
from modelyard.store.agents import Agents


def _settings(agents: dict[str, Any]) -> Settings:
    return Settings.model_validate({"local": {"enabled": False}, "agents": agents})


def _book(store: Store, settings: Settings) -> AgentBook:
    return AgentBook(store, lambda: settings, lambda: ("chat", "other"))


async def _live(book: AgentBook, name: str) -> tuple[int, str]:
    found = await book.resolve(AgentRef(name, None, "model"))
    return found.version, found.deployment


async def test_config_changes_become_live_versions_and_api_choices_survive(store: Store):
    first = _settings({"a": {"deployment": "chat"}})
    book = _book(store, first)
    await book.sync(first)
    await book.sync(first)  # unchanged: nothing recorded
    assert await _live(book, "a") == (1, "chat")
    await book.create_version("a", {"deployment": "other"})
    assert await _live(book, "a") == (2, "other")
    await book.sync(first)  # a restart with the same config: the API's version stays live
    assert await _live(book, "a") == (2, "other")
    assert (await book.get("a")).origin == "config"
    changed = _settings({"a": {"deployment": "chat", "instructions": "new"}})
    await book.sync(changed)  # the operator edited it: the config wins again
    assert await _live(book, "a") == (3, "chat")
    info = await book.rollback("a")
    assert info.live_version == 2
    await book.sync(_settings({}))  # removed from the config
    with pytest.raises(NotFound):
        await book.resolve(AgentRef("a", None, "model"))
    assert [v.version for v in await _history(book, store, "a")] == [1, 2, 3]


async def _history(book: AgentBook, store: Store, name: str) -> list[Any]:
    async with store.transaction() as session:
        return await Agents(session).history(name)


async def test_racing_workers_record_one_version(store: Store):
    settings = _settings({"a": {"deployment": "chat"}, "b": {"deployment": "other"}})
    books = [_book(store, settings) for _ in range(4)]
    await asyncio.gather(*(book.sync(settings) for book in books))
    for name in ("a", "b"):
        assert len(await _history(books[0], store, name)) == 1


async def test_rules_of_the_admin_use_cases(store: Store):
    settings = _settings({"conf": {"deployment": "chat"}})
    book = _book(store, settings)
    await book.sync(settings)
    with pytest.raises(InvalidRequest) as caught:
        await book.rollback("conf")
    assert caught.value.param == "version"  # version 1 is the first
    with pytest.raises(InvalidRequest):
        await book.delete("conf")
    with pytest.raises(NotFound):
        await book.set_live("conf", 5)
    with pytest.raises(InvalidRequest) as bad:
        await book.create_version("x", {"deployment": "nowhere"})
    assert bad.value.param == "deployment"
    await book.create_version("x", {"deployment": "chat"})
    await book.delete("x")
    with pytest.raises(NotFound):
        await book.get("x")
    assert [a.name for a in await book.list()] == ["conf"]
