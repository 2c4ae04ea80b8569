"""Portal sessions live in the store: behind ``--workers 2`` and across two replicas on one
store, a session made by one process is honoured by every other, and a sign-out on one ends
it everywhere (no sticky sessions needed)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import RunningServer, run_server

ADMIN_KEY = "my-portalreplicas-operator-bootstrap-secret"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _sign_in(server: RunningServer) -> tuple[str, str]:
    """The session cookie and the page's CSRF token of a key sign-in through the form."""
    with httpx.Client(base_url=server.url) as browser:
        form = browser.get("/portal/login")
        done = browser.post("/portal/login", data={"csrf": _csrf(form.text), "api_key": ADMIN_KEY})
        assert done.status_code == 303, done.text
        cookie = browser.cookies["modelyard_portal"]
        page = browser.get("/portal/catalog")
        assert page.status_code == 200
        return cookie, _csrf(page.text)


def _page(server: RunningServer, cookie: str) -> int:
    """One page on a fresh connection (any worker may take it)."""
    with httpx.Client(base_url=server.url) as browser:
        browser.cookies.set("modelyard_portal", cookie, path="/portal")
        return browser.get("/portal/catalog").status_code


@pytest.mark.integration
def test_a_session_is_honoured_by_every_worker_and_replica_and_ended_everywhere(
    tmp_path: Path,
):
    store = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    env = {"MODELYARD_ADMIN_KEY": ADMIN_KEY, "MODELYARD_DATABASE_URL": store}
    config = {"local": {"enabled": False}, "portal": {"session_idle_s": 600}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        run_server(tmp_path / "a", config, env, extra_args=("--workers", "2")) as a,
        run_server(tmp_path / "b", config, env) as b,
    ):
        cookie, csrf = _sign_in(a)
        assert [_page(a, cookie) for _ in range(6)] == [200] * 6
        assert _page(b, cookie) == 200  # another replica, never asked before
        with httpx.Client(base_url=b.url) as browser:
            browser.cookies.set("modelyard_portal", cookie, path="/portal")
            out = browser.post("/portal/logout", data={"csrf": csrf})
            assert out.status_code == 303 and out.headers["location"] == "/portal/login"
        assert [_page(a, cookie) for _ in range(6)] == [303] * 6
        assert _page(b, cookie) == 303
