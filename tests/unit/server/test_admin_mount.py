"""The admin routes imported at their first request (``server/admin_mount.py``) answer as the
same routes in the app's own table do (a config that observes): found, 404, 405 and its Allow."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.admin_mount import LazyAdmin
from modelyard.server.app import create_app

_CONFIG: dict[str, Any] = {
    "local": {"enabled": False},
    "providers": {"fake": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"}},
    "deployments": {"chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]}},
}
# JSON logs make an observation, which lists the admin routes in the app's table at build.
_EAGER = {**_CONFIG, "observability": {"logs": {"format": "json"}}}
_ASKED = [
    ("GET", "/admin/v1/openapi.json"),
    ("GET", "/admin/v1/no-such-thing"),
    ("DELETE", "/admin/v1/openapi.json"),
    ("GET", "/admin/v1/keys"),  # no store: the admin API's own answer
    ("GET", "/admin"),
]


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    lazy = create_app(Settings.model_validate(_CONFIG))
    eager = create_app(Settings.model_validate(_EAGER))
    assert any(isinstance(r, LazyAdmin) for r in lazy.routes)
    assert not any(isinstance(r, LazyAdmin) for r in eager.routes)
    assert any(isinstance(r, Route) and r.path.startswith("/admin/") for r in eager.routes)
    with (
        TestClient(lazy, raise_server_exceptions=False) as first,
        TestClient(eager, raise_server_exceptions=False) as second,
    ):
        yield first, second


@pytest.mark.parametrize(("method", "path"), _ASKED)
def test_an_admin_path_is_answered_as_by_the_routes_in_the_table(
    clients: tuple[TestClient, TestClient], method: str, path: str
) -> None:
    lazy, eager = clients
    got, expected = lazy.request(method, path), eager.request(method, path)
    assert (got.status_code, got.headers.get("allow")) == (
        expected.status_code,
        expected.headers.get("allow"),
    )
    assert got.headers["content-type"] == expected.headers["content-type"]
    if got.status_code >= 400:
        assert got.json()["error"]["type"] == expected.json()["error"]["type"]


def test_the_statuses_are_those_the_admin_api_answers(
    clients: tuple[TestClient, TestClient],
) -> None:
    lazy, _ = clients
    statuses = [lazy.request(method, path).status_code for method, path in _ASKED]
    assert statuses[:3] == [200, 404, 405]
    assert "GET" in lazy.request("DELETE", "/admin/v1/openapi.json").headers["allow"]


def test_concurrent_first_requests_build_the_routes_once() -> None:
    admin = LazyAdmin()

    async def both() -> tuple[object, object]:
        return await asyncio.gather(admin.router(), admin.router())

    first, second = asyncio.run(both())
    assert first is second
