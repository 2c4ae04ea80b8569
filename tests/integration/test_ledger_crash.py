"""What the usage ledger can lose: on a graceful stop nothing; on a hard crash (SIGKILL) at most
the records of the last flush interval (0.2 s) until the next start, which writes them from the
ledger's journal and records the requests that were in flight as interrupted.

The tests wait for rows to be in the database, never for an interval to pass: what the
background writer has written, a crash cannot take back, however slow the machine was."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import httpx2 as httpx
import pytest

from modelyard.store import open_store
from modelyard.store.usage import INTERRUPTED, UsageLedger, UsageRecord
from modelyard.tenancy.model import UsageFilter
from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server
from tests.waiting import wait_until


def _config(fake: FakeOpenAI) -> dict[str, object]:
    return {
        "local": {"enabled": False},
        "providers": {
            "fake": {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::K"}
        },
        "deployments": {"chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]}},
    }


async def _request_ids(data: Path) -> set[str]:
    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        async with store.transaction() as session:
            records = await UsageLedger(session).records(UsageFilter(), limit=100_000)
        return {r.request_id for r in records}
    finally:
        await store.aclose()


def _send(server: RunningServer, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        reply = httpx.post(
            f"{server.base_url}/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert reply.status_code == 200
        ids.append(reply.headers["x-request-id"])
    return ids


def test_a_graceful_stop_loses_nothing(fake_upstream: FakeOpenAI, tmp_path: Path):
    with run_server(tmp_path, _config(fake_upstream), env={"K": UPSTREAM_KEY}) as server:
        sent = _send(server, 30)
    assert asyncio.run(_request_ids(tmp_path / "data")) == set(sent)


def test_a_hard_crash_loses_at_most_the_last_flush_interval(
    fake_upstream: FakeOpenAI, tmp_path: Path
):
    with run_server(tmp_path, _config(fake_upstream), env={"K": UPSTREAM_KEY}) as server:
        settled = _send(server, 20)
        # Written by the background writer while the server runs: no stop, no flush asked for.
        wait_until(
            lambda: set(settled) <= asyncio.run(_request_ids(tmp_path / "data")),
            "the background writer to write the settled requests",
        )
        recent = _send(server, 10)
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    written = asyncio.run(_request_ids(tmp_path / "data"))
    assert set(settled) <= written
    assert written <= set(settled) | set(recent)


def test_a_client_leaving_mid_stream_is_recorded_as_499(fake_upstream: FakeOpenAI, tmp_path: Path):
    config = _config(fake_upstream)
    config["deployments"]["slow"] = {  # type: ignore[index]
        "targets": [{"provider": "fake", "model": "trickle-300"}]
    }
    with run_server(tmp_path, config, env={"K": UPSTREAM_KEY}) as server:
        body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.stream(
            "POST", f"{server.base_url}/chat/completions", json=body, timeout=30
        ) as reply:
            left = reply.headers["x-request-id"]
            next(reply.iter_raw())  # the first frame, then hang up
        finished = _send(server, 1)[0]
        # The server notices the hang-up at its next write, then records the request.
        store = wait_until(
            lambda: _statuses_if_all(tmp_path / "data", {left, finished}),
            "both requests in the ledger",
        )
    assert store[left] == 499
    assert store[finished] == 200


async def _statuses(data: Path) -> dict[str, int]:
    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        async with store.transaction() as session:
            records = await UsageLedger(session).records(UsageFilter(), limit=100)
        return {r.request_id: r.status for r in records}
    finally:
        await store.aclose()


def _statuses_if_all(data: Path, request_ids: set[str]) -> dict[str, int] | None:
    found = asyncio.run(_statuses(data))
    return found if request_ids <= found.keys() else None


async def _records(data: Path) -> dict[str, UsageRecord]:
    store = await open_store(f"sqlite+aiosqlite:///{data / 'modelyard.db'}")
    try:
        async with store.transaction() as session:
            records = await UsageLedger(session).records(UsageFilter(), limit=100_000)
        return {r.request_id: r for r in records}
    finally:
        await store.aclose()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_restart_after_a_kill_writes_the_lost_rows_and_the_stream_cut_as_interrupted(
    fake_upstream: FakeOpenAI, tmp_path: Path, workers: int
):
    """``kill -9`` of the server (its workers and their ledger writers) with a stream under way
    and answered requests whose rows could not be written yet (the test holds the database's
    write lock, so the ledger writer waits); the next start writes every answered request's
    row and the stream as ``interrupted``, each once. With two workers each has a journal of
    its own, and the next start recovers both."""
    config = _config(fake_upstream)
    config["deployments"]["slow"] = {  # type: ignore[index]
        "targets": [{"provider": "fake", "model": "trickle-5000"}]
    }
    body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    args = ("--workers", str(workers))
    data = tmp_path / "data"
    with run_server(tmp_path, config, env={"K": UPSTREAM_KEY}, extra_args=args) as server:
        written = _send(server, 10)
        wait_until(lambda: set(written) <= asyncio.run(_request_ids(data)), "rows written")
        blocker = sqlite3.connect(data / "modelyard.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # from here the ledger's batches wait
        try:
            queued = _send(server, 20)
            with httpx.stream(
                "POST", f"{server.base_url}/chat/completions", json=body, timeout=30
            ) as reply:
                cut = reply.headers["x-request-id"]
                frames = reply.iter_raw()  # held: a dropped iterator closes the connection
                next(frames)  # the stream is under way
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()
        finally:
            blocker.close()
    before = asyncio.run(_records(data))
    assert set(before) == set(written)  # the killed server had written none of the others
    with run_server(tmp_path, config, env={"K": UPSTREAM_KEY}, extra_args=args) as server:
        expected = {*written, *queued, cut}
        # Each worker recovers before it serves; with two, the other may still be at it.
        after = wait_until(lambda: _records_if(data, expected), "the recovered rows")
        again = _send(server, 1)
    assert set(after) == expected
    assert [r.request_id for r in after.values() if r.status != 200] == [cut]
    interrupted = after[cut]
    assert interrupted.status == INTERRUPTED
    assert (interrupted.deployment, interrupted.stream, interrupted.output_tokens) == (
        "slow", True, 0,
    )  # fmt: skip
    assert all(after[rid].output_tokens > 0 for rid in queued)  # as answered, tokens included
    final = asyncio.run(_records(data))
    assert set(final) == expected | set(again)  # the second stop wrote its own, each once
    assert {rid: r.status for rid, r in final.items() if rid in after} == {
        rid: r.status for rid, r in after.items()
    }
    assert list((data / "journal").rglob("*.jnl")) == []


def _records_if(data: Path, request_ids: set[str]) -> dict[str, UsageRecord] | None:
    found = asyncio.run(_records(data))
    return found if request_ids <= found.keys() else None
