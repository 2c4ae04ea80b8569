"""An app with a SQLite store in a temp dir, the operator key from MODELYARD_ADMIN_KEY, and a
fake OpenAI-compatible upstream on loopback; requests go through starlette's TestClient, whose
event loop also runs the real key refresher."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI
from tests.migrated import MigratedSqlite
from tests.waiting import wait_until

ADMIN_KEY = "operator-bootstrap-secret-for-tests"
UPSTREAM_KEY = "sk-upstream-admin-tests"
# Dollars per million tokens: integers so expected costs are exact.
PRICE_IN, PRICE_OUT = 2, 8
USER = [{"role": "user", "content": "hello there"}]


def admin_settings(fake_url: str) -> Settings:
    target = {"provider": "fake", "model": "gpt-4o-mini"}
    return Settings.model_validate(
        {
            "local": {"enabled": False},
            "providers": {
                "fake": {"type": "openai_compatible", "base_url": fake_url, "api_key": UPSTREAM_KEY}
            },
            "deployments": {
                "chat": {"targets": [target]},
                "other": {"targets": [{**target, "model": "gpt-4o"}]},
            },
            "prices": {
                "fake/gpt-4o-mini": {"input": PRICE_IN, "output": PRICE_OUT},
                "fake/gpt-4o": {"input": PRICE_IN, "output": PRICE_OUT},
            },
        }
    )


@dataclass
class Admin:
    """The TestClient plus helpers that call as a given key."""

    client: TestClient

    def call(self, key: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return self.client.request(method, path, headers=headers, **kwargs)

    def ok(self, key: str | None, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(key, method, path, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def project(self, project_id: str, **limits: Any) -> dict[str, Any]:
        body = {"id": project_id, **limits}
        created: dict[str, Any] = self.ok(ADMIN_KEY, "POST", "/admin/v1/projects", json=body)
        return created

    def key(self, project: str | None, role: str = "member", **fields: Any) -> dict[str, Any]:
        body = {"project": project, "role": role, **fields}
        created: dict[str, Any] = self.ok(ADMIN_KEY, "POST", "/admin/v1/keys", json=body)
        return created

    def chat(self, key: str, model: str = "chat") -> httpx.Response:
        body = {"model": model, "messages": USER}
        return self.call(key, "POST", "/v1/chat/completions", json=body)


def wait_for(condition: Callable[[], bool], what: str = "the condition") -> None:
    """Until ``condition()`` holds: the key refresher's next poll, however late it comes."""
    wait_until(condition, what)


@pytest.fixture(scope="package")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("MODELYARD_ADMIN_KEY", ADMIN_KEY)
    for name in ("MODELYARD_REDIS_URL", "MODELYARD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def admin(
    env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI, migrated_sqlite: MigratedSqlite
) -> Iterator[Admin]:
    url = migrated_sqlite.url(tmp_path / "store.db")
    with TestClient(create_app(admin_settings(upstream.base_url), store_url=url)) as client:
        yield Admin(client)
