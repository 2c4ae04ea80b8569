"""Issue 17 #9 and #14 through the real app: a write takes effect on the server that served it
before the answer leaves, and a key created elsewhere (the CLI, another server) is served with
its limits and counted from its first call, never before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelyard.server.app import create_app
from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import open_store
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import Limits, UsageFilter
from tests.fakes.openai_upstream import FakeOpenAI

from .conftest import ADMIN_KEY, USER, Admin, admin_settings, wait_for

P = "/admin/v1"
CLI = Principal("cli", role="operator")


def test_a_revoked_key_is_refused_as_soon_as_the_revoke_answers(admin: Admin):
    admin.project("team")
    key = admin.key("team")
    wait_for(lambda: admin.chat(key["secret"]).status_code == 200)
    admin.ok(ADMIN_KEY, "POST", f"{P}/keys/{key['id']}/revoke")
    refused = admin.chat(key["secret"])  # no waiting: the next call
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "revoked_api_key"


def test_a_new_limit_and_a_new_key_act_as_soon_as_the_write_answers(admin: Admin):
    admin.project("team")
    key = admin.key("team", rpm=1)  # made through this server: works at once, limited
    assert [admin.chat(key["secret"]).status_code for _ in range(2)] == [200, 429]
    admin.ok(ADMIN_KEY, "PATCH", f"{P}/keys/{key['id']}", json={"rpm": None})
    assert admin.chat(key["secret"]).status_code == 200


def _cli(url: str, work: Any) -> Any:
    """What ``modelyard keys create`` does: its own connection to the server's store."""

    async def run() -> Any:
        store = await open_store(url)
        try:
            return await work(TenancyAdmin(store))
        finally:
            await store.aclose()

    return asyncio.run(run())


@pytest.fixture
def open_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI
) -> Iterator[tuple[TestClient, str]]:
    """A server with no key at all (loopback open mode), as in the issue."""
    for name in ("MODELYARD_ADMIN_KEY", "MODELYARD_REDIS_URL", "MODELYARD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    with TestClient(create_app(admin_settings(upstream.base_url), store_url=url)) as client:
        yield client, url


async def _create(admin: TenancyAdmin) -> str:
    await admin.create_project(CLI, "p", None, Limits())
    _, fresh = await admin.create_key(CLI, KeySpec("p", limits=Limits(rpm=3)))
    return fresh.secret


def test_a_key_made_by_the_cli_is_limited_and_counted_from_its_first_call(
    open_server: tuple[TestClient, str],
):
    client, url = open_server
    secret = _cli(url, _create)
    headers = {"authorization": f"Bearer {secret}"}
    body = {"model": "chat", "messages": USER}
    # The case: `keys create --rpm 3`, then at once 5 requests. They were served as
    # anonymous, without the limit and without the key in the ledger (200 x 5, then 3 more).
    statuses = [
        client.post("/v1/chat/completions", json=body, headers=headers).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    key_id = secret.split("-")[1]

    async def counted(admin: TenancyAdmin) -> int:
        rows = await admin.usage_records(CLI, UsageFilter(key_id=key_id))
        return sum(1 for r in rows if r.status == 200)

    wait_for(lambda: _cli(url, counted) == 3, "the three answers in the ledger under the key")
    # Once a key exists every call needs one; a made-up key of our shape is refused.
    assert client.post("/v1/chat/completions", json=body).status_code == 401
    fake = {"authorization": "Bearer my-aaaaaaaaaaaa-" + "x" * 43}
    assert client.post("/v1/chat/completions", json=body, headers=fake).status_code == 401
