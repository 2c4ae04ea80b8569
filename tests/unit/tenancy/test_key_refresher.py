"""The key refresher installs a new key ring when the store's generation moves, and keeps the
running keys when the store fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.core.errors import AuthenticationFailed
from modelyard.services.tenancy import KeyRefresher, KeySpec, TenancyAdmin
from modelyard.store import Store, StoreError, open_store
from modelyard.tenancy.keys import KeyRing, Principal
from modelyard.tenancy.model import Limits
from tests.waiting import ManualTicks

OPERATOR = Principal("op", role="operator")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'modelyard.db'}")
    yield opened
    await opened.aclose()


async def test_new_keys_arrive_and_a_failing_store_keeps_the_old_ones(
    store: Store, caplog: pytest.LogCaptureFixture
):
    rings: list[KeyRing] = []
    ticks = ManualTicks()
    refresher = KeyRefresher(store, lambda: [], rings.append, tick=ticks)
    await refresher.refresh()
    assert len(rings) == 1 and not rings[-1].enabled
    await refresher.refresh()
    assert len(rings) == 1  # nothing changed, nothing rebuilt

    admin = TenancyAdmin(store)
    await admin.create_project(OPERATOR, "p", None, Limits())
    _, fresh = await admin.create_key(OPERATOR, KeySpec("p"))
    refresher.start()
    await ticks.tick()  # one poll
    assert len(rings) == 2
    assert rings[-1].authenticate(fresh.secret).project_id == "p"

    @contextlib.asynccontextmanager
    async def failing() -> AsyncIterator[AsyncSession]:
        raise StoreError("database error: connection refused")
        yield  # pragma: no cover

    store.transaction = failing  # type: ignore[method-assign]
    installed = len(rings)
    with caplog.at_level(logging.WARNING, "modelyard.tenancy"):
        for _ in range(3):
            await ticks.tick()  # a failed poll
    failed = "key refresh failed, keeping the current keys: database error: connection refused"
    assert caplog.messages.count(failed) == 3
    assert len(rings) == installed
    assert rings[-1].authenticate(fresh.secret).key_id
    await refresher.aclose()
    with pytest.raises(AuthenticationFailed):
        rings[-1].authenticate("my-aaaaaaaaaaaa-" + "x" * 43)


async def test_closing_lets_a_poll_under_way_finish(store: Store):
    """Cancelled inside its transaction, a poll could leave SQLite's write lock held."""
    entered, release, exits = asyncio.Event(), asyncio.Event(), []
    real = store.transaction

    @contextlib.asynccontextmanager
    async def slow() -> AsyncIterator[AsyncSession]:
        async with real() as session:
            entered.set()
            await release.wait()
            try:
                yield session
            except BaseException as exc:
                exits.append(type(exc).__name__)
                raise
            exits.append("committed")

    ticks = ManualTicks()
    refresher = KeyRefresher(store, lambda: [], lambda ring: None, tick=ticks)
    await refresher.refresh()
    store.transaction = slow  # type: ignore[method-assign]
    refresher.start()
    polling = asyncio.create_task(ticks.tick())
    await entered.wait()
    closing = asyncio.create_task(refresher.aclose())
    await asyncio.sleep(0)  # one step: aclose begins, and must wait for the poll, not cancel it
    assert not closing.done() and exits == []
    release.set()
    await closing
    assert exits == ["committed"]
    await polling  # the poll's round is over
