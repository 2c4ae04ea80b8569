"""Single sign-on through a real ``modelyard serve`` (uvicorn, uvloop, two workers) and a real
OpenID Connect provider: the config's secrets come from the environment, any worker takes the
provider's tokens for the admin API, a sign-in begun on one worker finishes on another (the
sign-in cookie carries its state) into a portal session every worker honours, and the person is
recorded once in the shared store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from modelyard.store import open_store
from modelyard.store.audit import Users
from modelyard.tenancy.model import SsoUser
from tests.fakes.oidc_provider import OidcProvider
from tests.integration.server import run_server

AUDIENCE = "modelyard-admin"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    idp = OidcProvider(AUDIENCE)
    idp.add_user("dana", email="dana@example.com", groups=["ops"])
    with idp.running():
        yield idp


@pytest.mark.integration
def test_a_served_gateway_signs_people_in(tmp_path: Path, provider: OidcProvider):
    config = {
        "local": {"enabled": False},
        "sso": {
            "issuer": provider.issuer,
            "client_id": "modelyard",
            "audience": AUDIENCE,
            "state_secret": "env::SSO_STATE_SECRET",
            "scopes": ["openid", "email", "groups"],
            "roles": [{"value": "ops", "role": "operator"}],
        },
    }
    env = {"SSO_STATE_SECRET": "x" * 48, "MODELYARD_ADMIN_KEY": "integration-admin-key"}
    with run_server(tmp_path, config, env, extra_args=("--workers", "2")) as server:
        token = provider.tokens_for("dana")["access_token"]
        with httpx.Client(base_url=server.url) as http:
            for _ in range(4):  # the workers answer in turn, each with its own key cache
                me = http.get("/admin/v1/me", headers={"authorization": f"Bearer {token}"})
                assert me.status_code == 200, me.text
                assert (me.json()["user"], me.json()["role"]) == ("dana", "operator")
            start = http.get("/auth/login", params={"login_hint": "dana"})
            assert start.status_code == 302
            cookie = start.cookies["modelyard_sso"]
            back = httpx.get(start.headers["location"])
            assert back.status_code == 302
            callback = urlsplit(back.headers["location"])
            assert callback.netloc == urlsplit(server.url).netloc  # built from the request
            # A fresh connection: the callback may land on the other worker.
            with httpx.Client(base_url=server.url) as other:
                other.cookies.set("modelyard_sso", cookie, path="/auth")
                done = other.get(f"{callback.path}?{callback.query}")
                assert done.status_code == 303, done.text  # into a portal session
                assert done.headers["location"] == "/portal/catalog"
            for _ in range(4):  # fresh connections: the session is in the store, any worker
                with httpx.Client(base_url=server.url, cookies=other.cookies) as browser:
                    page = browser.get("/portal/catalog")
                    assert page.status_code == 200 and "dana@example.com (operator)" in page.text
            audit = http.get(
                "/admin/v1/audit", headers={"authorization": "Bearer integration-admin-key"}
            )
            assert audit.status_code == 200 and audit.json()["data"] == []  # nothing changed
    people = asyncio.run(_people(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'modelyard.db'}"))
    assert [(u.subject, u.role, u.email) for u in people] == [
        ("dana", "operator", "dana@example.com")
    ]


async def _people(url: str) -> list[SsoUser]:
    store = await open_store(url)
    try:
        async with store.transaction() as session:
            return await Users(session).all()
    finally:
        await store.aclose()
