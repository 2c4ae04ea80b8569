"""The admin tests' app (SQLite store, operator key from the environment, a fake upstream),
driven through the portal's pages with starlette's TestClient."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.unit.admin.conftest import ADMIN_KEY, Admin, admin, env, upstream

__all__ = ["ADMIN_KEY", "Admin", "admin", "csrf_of", "env", "sign_in", "upstream"]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Sign in with ``key``; the session's CSRF token."""
    form = client.get("/portal/login")
    assert form.status_code == 200
    answer = client.post(
        "/portal/login", data={"csrf": csrf_of(form.text), "api_key": key}, follow_redirects=True
    )
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)
