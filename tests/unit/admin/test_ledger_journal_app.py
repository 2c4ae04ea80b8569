"""The ledger's journal as the served app runs it (``services/root.py``, ``store/journal.py``):
in a directory of the database's own, gone after a graceful stop, and never a reason not to
serve."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from modelyard.config import Settings
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI
from tests.unit.admin.conftest import ADMIN_KEY, admin_settings


def _settings(upstream: FakeOpenAI, journal_dir: Path) -> Settings:
    settings = admin_settings(upstream.base_url)
    store = settings.store.model_copy(update={"journal_dir": journal_dir})
    return settings.model_copy(update={"store": store})


def _chat(client: TestClient) -> str:
    reply = client.post(
        "/v1/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert reply.status_code == 200, reply.text
    return reply.headers["x-request-id"]


def test_each_database_has_its_journal_and_a_graceful_stop_deletes_it(
    env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI
) -> None:
    journal = tmp_path / "journal"
    urls = [f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("a.db", "b.db")]
    with (
        TestClient(create_app(_settings(upstream, journal), store_url=urls[0])) as a,
        TestClient(create_app(_settings(upstream, journal), store_url=urls[1])) as b,
    ):
        _chat(a)
        _chat(b)
        # One directory per database, each with slot 0 held: neither app would recover the
        # other's requests into its own database.
        held = sorted(str(p.relative_to(journal).parent) for p in journal.rglob("0.lock"))
        assert len(held) == 2 and held[0] != held[1]
    assert list(journal.iterdir()) == []  # both stopped with every row written: all gone


def test_a_journal_directory_that_cannot_be_made_is_logged_and_the_app_serves(
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    upstream: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    with (
        caplog.at_level(logging.ERROR, "modelyard.server"),
        TestClient(create_app(_settings(upstream, blocked), store_url=url)) as client,
    ):
        _chat(client)
    assert any("ledger journal off" in r.getMessage() for r in caplog.records)
