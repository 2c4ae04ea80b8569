"""The portal signs people in through the real OpenID Connect provider (code + PKCE): the
session carries the role and projects their claims map to, a person with several projects
switches between them (their role follows the project), sign-out ends the session and hands
over to the provider's end-session endpoint with the ID token as hint, and an operator can end
a person's sessions. The admin API's ``x-modelyard-project`` header chooses the project too."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.fakes.oidc_provider import OidcProvider
from tests.unit.portal.conftest import csrf_of

from .conftest import ADMIN_KEY
from .test_sso_app import _sign_in

P = "/admin/v1"
OPERATOR = {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def projects(gateway: TestClient) -> TestClient:
    for project in ("team-a", "team-b"):
        made = gateway.post(P + "/projects", headers=OPERATOR, json={"id": project})
        assert made.status_code == 201, made.text
    return gateway


def _portal_sign_in(gateway: TestClient, provider: OidcProvider, who: str) -> str:
    """Signed in through the provider; the page's CSRF token."""
    done = _sign_in(gateway, provider, who, return_to="/portal/catalog")
    assert done.status_code == 303, done.text
    page = gateway.get(done.headers["location"])
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def _nav(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Portal">(.*?)</nav>', html, re.S)
    assert nav is not None
    return re.findall(r">([^<]+)</a>", nav.group(1))


def test_the_sign_in_page_offers_the_provider(gateway: TestClient):
    page = gateway.get("/portal/login")
    link = re.search(r'<a class="button" href="([^"]+)">Sign in with ([^<]+)</a>', page.text)
    assert link is not None and link.group(2) == "single sign-on"
    assert unescape(link.group(1)) == "/auth/login?return_to=/portal/catalog"
    assert 'name="api_key"' in page.text  # key sign-in is still there


def test_a_person_switches_between_their_projects_and_their_role_follows(
    projects: TestClient, provider: OidcProvider
):
    gateway = projects
    csrf = _portal_sign_in(gateway, provider, "bob")  # owner of team-a, member of team-b
    keys = gateway.get("/portal/keys")
    assert "Keys and projects" in _nav(keys.text) and "bob@example.com (owner)" in keys.text
    switched = gateway.post(
        "/portal/project", data={"csrf": csrf, "project": "team-b", "back": "/portal/usage"},
        follow_redirects=False,
    )  # fmt: skip
    assert switched.status_code == 303 and switched.headers["location"] == "/portal/usage"
    usage = gateway.get("/portal/usage")
    assert "bob@example.com (member)" in usage.text
    assert "Keys and projects" not in _nav(usage.text)
    assert re.search(r'<option value="team-b" selected>', usage.text)
    assert gateway.get("/portal/keys").status_code == 403  # refused, not only hidden
    for project, status, says in (
        ("team-z", 403, "not a member of project 'team-z'"),
        ("Team A!", 400, "not a project id"),
    ):
        refused = gateway.post("/portal/project", data={"csrf": csrf, "project": project})
        assert refused.status_code == status and says in unescape(refused.text)
    no_csrf = gateway.post("/portal/project", data={"project": "team-a"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text


def test_sign_out_ends_the_session_and_the_providers(projects: TestClient, provider: OidcProvider):
    gateway = projects
    csrf = _portal_sign_in(gateway, provider, "carol")
    cookie = gateway.cookies.get("modelyard_portal")
    assert cookie
    out = gateway.post("/portal/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 200 and "signed out of Modelyard" in out.text
    refresh = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', out.text)
    assert refresh is not None
    target = unescape(refresh.group(1))
    assert target.startswith(provider.issuer + "/logout?")
    hint = parse_qs(urlsplit(target).query)["id_token_hint"][0]
    assert hint.count(".") == 2  # the ID token the sign-in got
    assert httpx.get(target).status_code == 200
    assert provider.logouts[-1]["id_token_hint"] == hint
    gateway.cookies.set("modelyard_portal", cookie, path="/portal")  # a copy kept aside
    again = gateway.get("/portal/catalog", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/portal/login"


def test_an_operator_ends_a_persons_sessions_and_a_revoked_key_ends_its_own(
    projects: TestClient, provider: OidcProvider
):
    gateway = projects
    _portal_sign_in(gateway, provider, "carol")
    assert gateway.get("/portal/catalog", follow_redirects=False).status_code == 200
    carol = {"authorization": f"Bearer {provider.tokens_for('carol')['access_token']}"}
    refused = gateway.delete(P + "/users/carol/sessions", headers=carol)
    assert refused.status_code == 403  # a member may not
    ended = gateway.delete(P + "/users/carol/sessions", headers=OPERATOR)
    assert ended.status_code == 200 and ended.json() == {
        "object": "sessions.ended", "user": "carol", "ended": 1,
    }  # fmt: skip
    assert gateway.get("/portal/catalog", follow_redirects=False).status_code == 303
    audit = gateway.get(P + "/audit", headers=OPERATOR, params={"kind": "user.sign_out"})
    assert [e["target"] for e in audit.json()["data"]] == ["carol"]
    key = gateway.post(P + "/keys", headers=OPERATOR, json={"project": "team-a"}).json()
    gateway.cookies.clear()
    form = gateway.get("/portal/login")
    signed = gateway.post(
        "/portal/login", data={"csrf": csrf_of(form.text), "api_key": key["secret"]},
        follow_redirects=False,
    )  # fmt: skip
    assert signed.status_code == 303
    assert gateway.get("/portal/catalog", follow_redirects=False).status_code == 200
    assert gateway.delete(P + f"/keys/{key['id']}", headers=OPERATOR).status_code == 200
    assert gateway.get("/portal/catalog", follow_redirects=False).status_code == 303
