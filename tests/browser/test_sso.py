"""Single sign-on into the portal in a real browser: Debian's chromium signs in through the
real OpenID Connect provider the suite starts (authorization code + PKCE), sees the projects
its claims map to, switches project (and its role with it), and signs out: the provider's
end-session endpoint gets the ID token as hint and the old session cookie no longer works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import ADMIN_KEY, Gateway, shoot
from tests.fakes.oidc_provider import OidcProvider
from tests.integration.server import run_server


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    idp = OidcProvider("modelyard-admin")
    idp.add_user("erin", email="erin@example.com", groups=["team-a-leads", "team-b"])
    with idp.running():
        yield idp


@pytest.fixture(scope="module")
def sso_gateway(
    provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("portal-sso")
    config = {
        "local": {"enabled": False},
        "sso": {
            "issuer": provider.issuer,
            "display_name": "Test IdP",
            "client_id": "modelyard",
            "audience": "modelyard-admin",
            "state_secret": "env::SSO_STATE_SECRET",
            "scopes": ["openid", "email", "groups"],
            "roles": [
                {"value": "team-a-leads", "role": "owner", "projects": ["team-a"]},
                {"value": "team-b", "role": "member", "projects": ["team-b"]},
            ],
        },
    }
    env = {"MODELYARD_ADMIN_KEY": ADMIN_KEY, "SSO_STATE_SECRET": "z" * 40}
    with run_server(tmp, config, env) as server:
        gateway = Gateway(server)
        for project in ("team-a", "team-b"):
            gateway.admin("POST", "/projects", json={"id": project})
        yield gateway


def test_sign_in_through_the_provider_switch_project_and_sign_out(
    browser: BrowserContext, sso_gateway: Gateway, provider: OidcProvider
):
    gateway = sso_gateway
    page = browser.new_page()
    page.goto(f"{gateway.url}/portal/login")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.get_by_label("Username").fill("erin")  # the provider's own page
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/portal/catalog")
    expect(page.get_by_test_id("who")).to_have_text("erin@example.com (owner)")
    switcher = page.get_by_label("Project")
    expect(switcher.locator("option")).to_have_text(["team-a", "team-b"])
    expect(switcher).to_have_value("team-a")
    nav = page.get_by_role("navigation", name="Portal")
    expect(nav.get_by_role("link", name="Keys and projects")).to_be_visible()
    shoot(page, "sso-signed-in")
    page.get_by_role("link", name="Keys and projects").click()
    expect(page.get_by_role("main")).to_contain_text("team-a")

    page.goto(f"{gateway.url}/portal/usage")
    switcher.select_option("team-b")
    page.get_by_role("button", name="Switch").click()
    page.wait_for_url("**/portal/usage")
    expect(page.get_by_test_id("who")).to_have_text("erin@example.com (member)")
    expect(switcher).to_have_value("team-b")
    expect(nav.get_by_role("link", name="Keys and projects")).to_have_count(0)
    refused = page.goto(f"{gateway.url}/portal/keys")
    assert refused is not None and refused.status == 403
    shoot(page, "sso-switched")

    page.goto(f"{gateway.url}/portal/catalog")
    (session,) = [c for c in browser.cookies() if c["name"] == "modelyard_portal"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{provider.issuer}/logout?**")  # the provider's end-session endpoint
    expect(page.locator("body")).to_contain_text("signed out")
    hint = provider.logouts[-1].get("id_token_hint", "")
    assert hint.count(".") == 2 and provider.logouts[-1]["client_id"] == "modelyard"
    page.goto(f"{gateway.url}/portal/catalog")
    page.wait_for_url("**/portal/login")
    with httpx.Client(base_url=gateway.url) as old:  # the cookie as it was: no longer works
        old.cookies.set("modelyard_portal", session["value"], path="/portal")
        answer = old.get("/portal/catalog")
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/login"
