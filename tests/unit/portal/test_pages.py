"""The portal's pages through the app: sign-in, cookies, CSRF, what each role sees and may do,
a deployment change recorded as a version."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import BreakerConfig, RoutingConfig
from modelyard.portal.session import COOKIE
from modelyard.server.app import create_app
from tests.fakes.openai_chat import REFUSAL
from tests.fakes.openai_upstream import FakeOpenAI
from tests.migrated import MigratedSqlite
from tests.unit.admin.conftest import admin_settings
from tests.unit.portal.conftest import ADMIN_KEY, Admin, csrf_of, sign_in


def test_sign_in_sets_a_strict_http_only_session_cookie_and_logout_ends_it(admin: Admin):
    client = admin.client
    assert client.get("/portal/catalog", follow_redirects=False).headers["location"] == (
        "/portal/login"
    )
    form = client.get("/portal/login")
    answer = client.post(
        "/portal/login",
        data={"csrf": csrf_of(form.text), "api_key": ADMIN_KEY},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; HTTPS requests get it
    assert ADMIN_KEY not in cookie
    page = client.get("/portal/catalog")
    assert page.status_code == 200 and "Sign out" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    client.post("/portal/logout", data={"csrf": csrf_of(page.text)})
    assert client.get("/portal/catalog", follow_redirects=False).status_code == 303


def test_a_wrong_key_is_refused_and_sign_in_without_its_csrf_token_is_403(admin: Admin):
    client = admin.client
    form = client.get("/portal/login")
    wrong = client.post("/portal/login", data={"csrf": csrf_of(form.text), "api_key": "nope"})
    assert wrong.status_code == 401 and "invalid API key" in wrong.text
    forged = client.post("/portal/login", data={"csrf": "forged", "api_key": ADMIN_KEY})
    assert forged.status_code == 403


def test_every_unsafe_request_needs_the_sessions_csrf_token(admin: Admin):
    client = admin.client
    csrf = sign_in(client, ADMIN_KEY)
    for data in ({}, {"csrf": "forged"}):
        refused = client.post("/portal/projects", data={"id": "sneaky", **data})
        assert refused.status_code == 403 and "CSRF" in refused.text
    headers = {"x-csrf-token": csrf}  # how HTMX sends it
    made = client.post("/portal/projects", data={"id": "fine"}, headers=headers)
    assert made.status_code == 200, made.text
    names = [p["id"] for p in admin.ok(ADMIN_KEY, "GET", "/admin/v1/projects")["data"]]
    assert names == ["fine"]


def test_a_member_sees_no_keys_page_and_may_not_change_a_deployment(admin: Admin):
    admin.project("alpha")
    member = admin.key("alpha", "member")["secret"]
    client = admin.client
    csrf = sign_in(client, member)
    page = client.get("/portal/deployments/chat")
    assert page.status_code == 200
    assert "Keys and projects" not in page.text and "Roll back" not in page.text
    assert "Re-point" not in page.text
    assert client.get("/portal/keys").status_code == 403
    changed = client.post(
        "/portal/deployments/chat/change",
        data={"csrf": csrf, "model_0": "gpt-4o", "confirm": "yes"},
    )
    assert changed.status_code == 403 and "operator" in changed.text


def test_an_owner_sees_its_project_only(admin: Admin):
    admin.project("alpha")
    admin.project("beta")
    admin.key("beta", "member", name="beta-secret-key")
    owner = admin.key("alpha", "owner")["secret"]
    client = admin.client
    sign_in(client, owner)
    mine = client.get("/portal/keys")
    assert mine.status_code == 200 and "alpha" in mine.text
    assert "beta" not in mine.text
    other = client.get("/portal/keys?project=beta")
    assert other.status_code == 403 and "beta-secret-key" not in other.text


def test_a_key_is_created_with_its_secret_shown_once_and_revoked(admin: Admin):
    admin.project("alpha")
    client = admin.client
    csrf = sign_in(client, ADMIN_KEY)
    made = client.post(
        "/portal/keys",
        data={"csrf": csrf, "project": "alpha", "role": "member", "rpm": "60", "name": "ci"},
    )
    assert made.status_code == 200, made.text
    secret = made.text.split('data-testid="secret">')[1].split("<")[0]
    assert admin.chat(secret).status_code == 200
    listed = client.get("/portal/keys?project=alpha")
    assert secret not in listed.text and "60 rpm" in listed.text
    key_id = secret.split("-")[1]
    bad = client.post("/portal/keys", data={"csrf": csrf, "project": "alpha", "rpm": "many"})
    assert bad.status_code == 400 and "rpm" in bad.text
    assert client.post(f"/portal/keys/{key_id}/revoke", data={"csrf": csrf}).status_code == 200
    assert admin.chat(secret).status_code == 401


def test_a_re_point_is_confirmed_then_recorded_as_a_version_that_can_be_rolled_back(
    admin: Admin,
):
    client = admin.client
    csrf = sign_in(client, ADMIN_KEY)
    asked = client.post("/portal/deployments/chat/change", data={"csrf": csrf, "model_0": "gpt-4o"})
    shown = html.unescape(asked.text)
    assert "nothing changes" in shown and '+      "model": "gpt-4o"' in shown
    done = client.post(
        "/portal/deployments/chat/change",
        data={"csrf": csrf, "model_0": "gpt-4o", "confirm": "yes"},
    )
    assert done.status_code == 200 and "version 2 recorded (change:repoint)" in done.text
    page = client.get("/portal/deployments/chat")
    assert "Roll back to version 1" in page.text and "Roll back to version 2" not in page.text
    back = client.post(
        "/portal/deployments/chat/rollback", data={"csrf": csrf, "version": "1", "confirm": "yes"}
    )
    assert "version 3 recorded (rollback:1)" in back.text
    bad = client.post("/portal/deployments/chat/change", data={"csrf": csrf, "weight_0": "-1"})
    assert bad.status_code == 400 and "weight" in bad.text


def test_the_catalog_filters_and_a_model_page_shows_its_facts(admin: Admin):
    client = admin.client
    sign_in(client, ADMIN_KEY)
    found = client.get("/portal/catalog?q=gpt-4o-mini&used=1")
    assert found.status_code == 200
    assert "gpt-4o-mini" in found.text and 'href="/portal/deployments/chat"' in found.text
    rows = found.text.split("<tbody>")[1]
    assert "claude" not in rows and "gpt-4o-2024" not in rows  # exact: only the one used
    partial = client.get("/portal/catalog?q=claude", headers={"hx-request": "true"})
    assert "<html" not in partial.text and "claude" in partial.text
    model = client.get("/portal/model?id=gpt-4o-mini")
    assert model.status_code == 200 and "Context window" in model.text and "Try it" in model.text
    assert client.get("/portal/catalog?capability=flying").status_code == 400


def test_the_playground_streams_each_deployment_once_and_saves_an_eval_item(admin: Admin):
    client = admin.client
    csrf = sign_in(client, ADMIN_KEY)
    form = {"csrf": csrf, "user": "Say hello", "system": "Be brief", "max_tokens": "50"}
    one = client.post("/portal/playground", data={**form, "deployment": "chat"})
    assert one.status_code == 400 and "two to four" in one.text
    page = client.post("/portal/playground", data={**form, "deployment": ["chat", "other"]})
    assert page.status_code == 200, page.text
    cid = page.text.split('sse-connect="/portal/playground/')[1].split("/")[0]
    streamed = client.get(f"/portal/playground/{cid}/1/stream")
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [b.split("\n")[0] for b in streamed.text.split("\n\n") if b.startswith("event:")]
    assert events[0] == "event: delta" and events[-2:] == ["event: stats", "event: done"]
    assert "fake/gpt-4o" in streamed.text and "Tokens in/out" in streamed.text
    again = client.get(f"/portal/playground/{cid}/1/stream")  # a reconnect: no second call
    assert again.text.count("event: delta") == 1
    item = client.get(f"/portal/playground/{cid}/1/item")
    line = json.loads(item.text)
    assert line["input"] == "Say hello" and line["system"] == "Be brief" and line["reference"]
    assert line["grader"] == "similarity" and line["max_tokens"] == 50
    assert client.get(f"/portal/playground/{cid}/0/item").status_code == 404  # not run yet
    kept = client.get("/portal/playground")
    assert f"/portal/playground/{cid}" in kept.text
    sign_in(client, admin.key(None, "operator")["secret"])  # another user
    assert client.get(f"/portal/playground/{cid}").status_code == 404


def test_a_deployments_page_counts_its_targets_recent_calls(admin: Admin):
    client = admin.client
    sign_in(client, ADMIN_KEY)
    assert "no recent calls" in client.get("/portal/deployments/chat").text
    for _ in range(3):
        assert admin.chat(ADMIN_KEY).status_code == 200
    page = client.get("/portal/deployments/chat")
    assert page.status_code == 200
    assert "3 calls in 30 s, 0 % errors" in page.text


def test_recent_calls_are_counted_over_the_configured_breaker_window(
    env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI, migrated_sqlite: MigratedSqlite
):
    routing = RoutingConfig(breaker=BreakerConfig(window_s=90))
    settings = admin_settings(upstream.base_url).model_copy(update={"routing": routing})
    url = migrated_sqlite.url(tmp_path / "store.db")
    with TestClient(create_app(settings, store_url=url)) as client:
        admin = Admin(client)
        sign_in(client, ADMIN_KEY)
        for _ in range(2):
            assert admin.chat(ADMIN_KEY).status_code == 200
        page = client.get("/portal/deployments/chat")
    assert page.status_code == 200
    assert "2 calls in 90 s, 0 % errors" in page.text


def test_a_playground_refusal_streams_as_refusal_frames_and_is_no_eval_reference(admin: Admin):
    client = admin.client
    csrf = sign_in(client, ADMIN_KEY)
    form = {"csrf": csrf, "user": "please refuse", "deployment": ["chat", "other"]}
    page = client.post("/portal/playground", data=form)
    cid = page.text.split('sse-connect="/portal/playground/')[1].split("/")[0]
    streamed = client.get(f"/portal/playground/{cid}/0/stream").text
    events = [b.split("\n") for b in streamed.split("\n\n") if b.startswith("event:")]
    assert [e[0] for e in events if e[0] != "event: refusal"] == ["event: stats", "event: done"]
    pieces = [line.removeprefix("data: ") for e in events[:-2] for line in e[1:]]
    assert pieces[0].startswith('<strong class="label">Refused: </strong>')
    assert html.unescape("".join(pieces)).endswith(REFUSAL)
    again = client.get(f"/portal/playground/{cid}/0/stream").text  # a reconnect: replayed
    assert again.count("event: refusal") == 1 and html.escape(REFUSAL) in again
    item = client.get(f"/portal/playground/{cid}/0/item")
    assert item.status_code == 400 and "refused" in item.text
