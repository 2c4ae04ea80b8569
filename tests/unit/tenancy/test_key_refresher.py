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


async def test_a_revoke_acts_at_once_here_and_within_one_poll_on_another_server(store: Store):
    """Issue 17 #9: two servers on one store, their pollers driven by hand. The one that served
    the revoke reloads before answering (``Root.keys_changed``: a shared refresh); the other
    refuses the key from its next poll on: the bound is one poll interval (0.5 s) plus one
    read of the store."""
    admin = TenancyAdmin(store)
    await admin.create_project(OPERATOR, "p", None, Limits())
    key, fresh = await admin.create_key(OPERATOR, KeySpec("p"))
    here: list[KeyRing] = []
    there: list[KeyRing] = []
    ticks_here, ticks_there = ManualTicks(), ManualTicks()
    serving = KeyRefresher(store, lambda: [], here.append, tick=ticks_here)
    other = KeyRefresher(store, lambda: [], there.append, tick=ticks_there)
    for refresher in (serving, other):
        await refresher.refresh()
        refresher.start()
    assert here[-1].authenticate(fresh.secret).key_id == key.id

    await admin.revoke_key(OPERATOR, key.id)
    await serving.refresh(share=True)  # what the admin route does before it answers
    with pytest.raises(AuthenticationFailed, match="revoked"):
        here[-1].authenticate(fresh.secret)
    assert there[-1].authenticate(fresh.secret).key_id == key.id  # no poll yet over there
    await ticks_there.tick()  # its next poll
    with pytest.raises(AuthenticationFailed, match="revoked"):
        there[-1].authenticate(fresh.secret)
    for refresher in (serving, other):
        await refresher.aclose()


async def test_requests_showing_a_new_key_share_one_read_of_the_store(store: Store):
    """Many requests presenting keys the ring does not hold cost one refresh, not one each,
    and a refresh never installs an older ring over a newer one."""
    rings: list[KeyRing] = []
    refresher = KeyRefresher(store, lambda: [], rings.append, tick=ManualTicks())
    await refresher.refresh()
    reads = 0
    real = store.transaction

    @contextlib.asynccontextmanager
    async def counted() -> AsyncIterator[AsyncSession]:
        nonlocal reads
        reads += 1
        async with real() as session:
            yield session

    admin = TenancyAdmin(store)
    await admin.create_project(OPERATOR, "p", None, Limits())
    _, fresh = await admin.create_key(OPERATOR, KeySpec("p"))
    store.transaction = counted  # type: ignore[method-assign]
    await asyncio.gather(*(refresher.refresh(share=True) for _ in range(20)))
    # The first read the generation and the keys (2 reads); the second began after the others
    # arrived, so none of the 18 left needed one of its own.
    assert reads <= 4, reads
    assert rings[-1].authenticate(fresh.secret).project_id == "p"
