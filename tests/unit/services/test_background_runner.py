"""``BackgroundRunner`` on its own: a run stopped before its task ever ran still ends and is
recorded, and which runs a starting gateway judges orphaned."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelyard.core.errors import RateLimited
from modelyard.services import background
from modelyard.services.background import STOPPED, BackgroundRunner, LiveRun
from modelyard.store import Store, open_store
from modelyard.store.background import BackgroundRuns

QUEUED: dict[str, Any] = {"id": "resp_1", "created_at": 1, "status": "queued", "output": []}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    yield opened
    await opened.aclose()


async def _never(run: LiveRun) -> dict[str, Any]:
    raise AssertionError("stopped before it ran: this never runs")


async def test_a_run_stopped_before_it_ran_ends_failed_and_recorded(store: Store):
    runner = BackgroundRunner(store)
    run = await runner.start("resp_1", "", QUEUED, _never)
    await runner.aclose()  # in the same step: the task has not run yet
    assert run.done.is_set() and run.body["status"] == "failed"
    assert run.body["error"]["message"] == STOPPED
    async with store.transaction() as session:
        row = await BackgroundRuns(session).get("resp_1", "")
    assert row is not None and row.status == "failed"
    assert orjson.loads(row.body)["error"]["message"] == STOPPED
    assert runner.find("resp_1", "") is None


async def test_a_run_cancelled_before_it_ran_ends_cancelled(store: Store):
    runner = BackgroundRunner(store)
    await runner.start("resp_1", "", QUEUED, _never)
    body = await runner.cancel("resp_1", "")
    assert body is not None and body["status"] == "cancelled"
    assert await runner.cancel("resp_1", "other-owner") is None


def test_which_runs_are_orphaned(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(background.SERVE_PID_ENV, "100")
    host, me = socket.gethostname(), os.getpid()
    assert background._orphaned(f"{host}/99/{me}")  # another serve: gone
    assert not background._orphaned(f"{host}/100/{me}")  # this very process
    assert not background._orphaned(f"other-host/99/{me}")  # not ours to judge
    assert not background._orphaned(f"{host}/100/{os.getppid()}")  # a live sibling
    assert background._orphaned(f"{host}/100/999999999")  # a dead sibling


async def _wait(run: LiveRun) -> dict[str, Any]:
    await asyncio.Event().wait()  # until cancelled
    raise AssertionError("unreachable")


async def test_the_number_of_runs_is_bounded(store: Store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(background, "MAX_RUNS", 2)
    runner = BackgroundRunner(store)
    for n in range(2):
        await runner.start(f"resp_{n}", "", {**QUEUED, "id": f"resp_{n}"}, _wait)
    with pytest.raises(RateLimited) as caught:
        await runner.start("resp_2", "", {**QUEUED, "id": "resp_2"}, _wait)
    assert caught.value.retry_after is not None and caught.value.param == "background"
    await runner.cancel("resp_0", "")
    await runner.start("resp_2", "", {**QUEUED, "id": "resp_2"}, _wait)  # room again
    await runner.aclose()
