"""Single sign-on through the real app and a real OpenID Connect provider: the admin API takes
the provider's access tokens (role and project from the mapped claims, the person recorded just
in time, audited by name); the authorization code flow with PKCE signs a person in through
``/auth/login`` and ``/auth/callback``; ``/auth/logout`` hands over to the provider's sign-out."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
from starlette.testclient import TestClient

from modelyard.store import open_store
from modelyard.store.audit import Users
from modelyard.tenancy.model import SsoUser
from tests.fakes.oidc_provider import OidcProvider

from .conftest import ADMIN_KEY

P = "/admin/v1"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _users(store_url: str) -> list[SsoUser]:
    async def read() -> list[SsoUser]:
        store = await open_store(store_url)
        try:
            async with store.transaction() as session:
                return await Users(session).all()
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_the_admin_api_takes_the_providers_access_tokens(
    gateway: TestClient, provider: OidcProvider, store_url: str
):
    alice = provider.tokens_for("alice")["access_token"]
    me = gateway.get(P + "/me", headers=_bearer(alice))
    assert me.status_code == 200, me.text
    assert (me.json()["user"], me.json()["role"], me.json()["key_id"]) == (
        "alice",
        "operator",
        None,
    )
    made = gateway.post(P + "/projects", headers=_bearer(alice), json={"id": "team-a"})
    assert made.status_code == 201, made.text
    bob = provider.tokens_for("bob")["access_token"]
    bob_me = gateway.get(P + "/me", headers=_bearer(bob)).json()
    assert (bob_me["role"], bob_me["project"]) == ("owner", "team-a")
    key = gateway.post(P + "/keys", headers=_bearer(bob), json={"project": "team-a"})
    assert key.status_code == 201, key.text
    refused = gateway.post(P + "/projects", headers=_bearer(bob), json={"id": "team-z"})
    assert refused.status_code == 403  # an owner makes no projects
    carol = provider.tokens_for("carol")["access_token"]
    assert gateway.get(P + "/projects", headers=_bearer(carol)).status_code == 200
    member_key = gateway.post(P + "/keys", headers=_bearer(carol), json={"project": "team-b"})
    assert member_key.status_code == 403, member_key.text
    audit = gateway.get(P + "/audit", headers=_bearer(ADMIN_KEY)).json()["data"]
    assert [(e["actor"], e["kind"]) for e in audit] == [
        ("user:alice", "project.create"),
        ("user:bob", "key.create"),
    ]
    people = {u.subject: u for u in _users(store_url)}
    assert sorted(people) == ["alice", "bob", "carol"]
    assert (people["bob"].role, people["bob"].projects) == ("owner", ("team-a",))
    assert people["alice"].email == "alice@example.com"


def test_bad_tokens_are_refused(gateway: TestClient, provider: OidcProvider):
    nobody = provider.tokens_for("mallory")["access_token"]  # a real person with no role here
    refused = gateway.get(P + "/me", headers=_bearer(nobody))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "sso_no_role"
    provider.token_lifetime_s = -60  # the provider hands out a token already expired
    expired = provider.tokens_for("alice")["access_token"]
    answer = gateway.get(P + "/me", headers=_bearer(expired))
    assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]
    provider.token_lifetime_s = 3600
    valid = provider.tokens_for("alice")["access_token"]
    head, body, signature = valid.split(".")
    forged = f"{head}.{body}.{signature[:-4]}AAAA"
    answer = gateway.get(P + "/me", headers=_bearer(forged))
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_token"
    # A model call does not take access tokens: the admin API only.
    chat = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    answer = gateway.post("/v1/chat/completions", headers=_bearer(valid), json=chat)
    assert answer.status_code == 401


def _sign_in(
    gateway: TestClient, provider: OidcProvider, who: str, return_to: str = "/portal/keys"
) -> httpx.Response:
    """A browser's round trip: the gateway, the provider (signed in as ``who``), back."""
    start = gateway.get(
        "/auth/login", params={"login_hint": who, "return_to": return_to},
        follow_redirects=False,
    )  # fmt: skip
    assert start.status_code == 302, start.text
    to_provider = start.headers["location"]
    query = parse_qs(urlsplit(to_provider).query)
    assert to_provider.startswith(provider.issuer + "/authorize?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["client_id"] == ["modelyard"] and "nonce" in query
    assert "code_verifier" not in to_provider
    back = httpx.get(to_provider, follow_redirects=False)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["location"])
    assert callback.path == "/auth/callback"
    return gateway.get(f"{callback.path}?{callback.query}", follow_redirects=False)


def test_a_person_signs_in_with_code_and_pkce(
    gateway: TestClient, provider: OidcProvider, store_url: str
):
    answer = _sign_in(gateway, provider, "bob")
    assert answer.status_code == 303, answer.text  # into a portal session, where they started
    assert answer.headers["location"] == "/portal/keys"
    cookie = answer.headers["set-cookie"]
    assert "modelyard_portal=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/portal" in cookie
    page = gateway.get("/portal/keys")
    assert page.status_code == 200, page.text
    assert "bob@example.com (owner)" in page.text  # the highest role, in the first project
    options = re.findall(r'<option value="([^"]+)"( selected)?>', page.text)
    assert options == [("team-a", " selected"), ("team-b", "")]  # every membership
    assert "modelyard_sso" not in gateway.cookies  # one sign-in per cookie
    assert [u.subject for u in _users(store_url)] == ["bob"]


def test_a_sign_in_needs_its_own_cookie_and_state(gateway: TestClient, provider: OidcProvider):
    start = gateway.get("/auth/login", params={"login_hint": "bob"}, follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    callback = urlsplit(back.headers["location"])
    params = parse_qs(callback.query)
    code, state = params["code"][0], params["state"][0]
    wrong_state = gateway.get("/auth/callback", params={"code": code, "state": state + "x"})
    assert wrong_state.status_code == 400
    assert wrong_state.json()["error"]["code"] == "sso_state_invalid"
    gateway.cookies.clear()
    no_cookie = gateway.get("/auth/callback", params={"code": code, "state": state})
    assert no_cookie.status_code == 400  # another browser's callback
    denied = gateway.get("/auth/callback", params={"error": "access_denied", "state": state})
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "sso_refused"
    # An outside address to return to is replaced by the root: no open redirect.
    for outside in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        answer = _sign_in(gateway, provider, "carol", return_to=outside)
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/catalog"


def test_a_replayed_code_is_refused(gateway: TestClient, provider: OidcProvider):
    start = gateway.get("/auth/login", params={"login_hint": "carol"}, follow_redirects=False)
    cookie = gateway.cookies.get("modelyard_sso")
    back = httpx.get(start.headers["location"], follow_redirects=False)
    callback = urlsplit(back.headers["location"])
    first = gateway.get(f"{callback.path}?{callback.query}", follow_redirects=False)
    assert first.status_code == 303 and "modelyard_portal=" in first.headers["set-cookie"]
    assert cookie is not None
    gateway.cookies.set("modelyard_sso", cookie, path="/auth")
    again = gateway.get(f"{callback.path}?{callback.query}")
    assert again.status_code == 401 and again.json()["error"]["code"] == "sso_refused"


def test_sign_out_hands_over_to_the_provider(gateway: TestClient, provider: OidcProvider):
    answer = gateway.get("/auth/logout", follow_redirects=False)
    assert answer.status_code == 302
    target = urlsplit(answer.headers["location"])
    assert f"{target.scheme}://{target.netloc}" == provider.issuer and target.path == "/logout"
    assert parse_qs(target.query)["client_id"] == ["modelyard"]
    assert httpx.get(answer.headers["location"]).status_code == 200
    assert provider.logouts[-1]["client_id"] == "modelyard"


def test_without_sso_the_routes_answer_404(tmp_path, monkeypatch):
    from modelyard.config.schema import Settings
    from modelyard.server.app import create_app

    monkeypatch.delenv("MODELYARD_DATABASE_URL", raising=False)
    app = create_app(Settings.model_validate({"local": {"enabled": False}}))
    with TestClient(app) as client:
        for path in ("/auth/login", "/auth/callback", "/auth/logout"):
            answer = client.get(path)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "no_sso"
