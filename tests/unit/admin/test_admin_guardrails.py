"""Guardrail policies attached to projects and keys through the admin API: names checked
against the config, who may attach what, the effective policy explained, and a new key's
policy enforced from its first call (the key ring carries it: no store read per request)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI
from tests.unit.admin.conftest import ADMIN_KEY, Admin, admin_settings

P = "/admin/v1"
CARD = "4111 1111 1111 1111"
POLICIES = {
    "strict": {"guards": [{"kind": "pii", "phases": ["input"], "action": "block"}]},
    "lenient": {"guards": [{"kind": "pii", "phases": ["input"], "action": "flag"}]},
}


def _settings(fake_url: str) -> Settings:
    """The admin tests' config plus two policies, attached to nothing in the config."""
    base = admin_settings(fake_url)
    return base.model_copy(
        update={"guardrails": type(base.guardrails).model_validate({"policies": POLICIES})}
    )


@pytest.fixture
def admin(env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI) -> Iterator[Admin]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    with TestClient(create_app(_settings(upstream.base_url), store_url=url)) as client:
        yield Admin(client)


def _card(admin: Admin, key: str) -> Any:
    body = {"model": "chat", "messages": [{"role": "user", "content": f"card {CARD}"}]}
    return admin.call(key, "POST", "/v1/chat/completions", json=body)


def test_a_new_keys_policy_blocks_from_its_first_call(admin: Admin) -> None:
    admin.project("acme")
    created = admin.key("acme", guardrails="strict")
    assert created["guardrails"] == "strict"
    refused = _card(admin, created["secret"])
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "content_filter"
    plain = admin.key("acme")
    assert _card(admin, plain["secret"]).status_code == 200  # no policy anywhere else


def test_an_unknown_policy_is_a_400_listing_the_configured_ones(admin: Admin) -> None:
    bad = admin.call(ADMIN_KEY, "POST", P + "/projects", json={"id": "x", "guardrails": "nope"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["param"] == "guardrails"
    assert "lenient, strict, off" in error["message"]


def test_project_policy_applies_and_the_key_overrides_it(admin: Admin) -> None:
    admin.project("acme")
    key = admin.key("acme", role="member")
    patched = admin.ok(ADMIN_KEY, "PATCH", P + "/projects/acme", json={"guardrails": "strict"})
    assert patched["guardrails"] == "strict"
    assert _card(admin, key["secret"]).status_code == 400
    shown = admin.ok(
        ADMIN_KEY, "GET", P + "/guardrails/explain", params={"deployment": "chat", "key": key["id"]}
    )
    assert (shown["policy"], shown["chosen_by"], shown["source"]) == ("strict", "project", "admin")
    admin.ok(ADMIN_KEY, "PATCH", f"{P}/keys/{key['id']}", json={"guardrails": "off"})
    assert _card(admin, key["secret"]).status_code == 200
    shown = admin.ok(
        ADMIN_KEY, "GET", P + "/guardrails/explain", params={"deployment": "chat", "key": key["id"]}
    )
    assert (shown["policy"], shown["chosen_by"], shown["attached_to"]) == (None, "key", key["id"])
    cleared = admin.ok(ADMIN_KEY, "PATCH", f"{P}/keys/{key['id']}", json={"guardrails": None})
    assert cleared["guardrails"] is None
    assert _card(admin, key["secret"]).status_code == 400


def test_an_owner_attaches_but_neither_exempts_nor_changes(admin: Admin) -> None:
    admin.project("acme")
    owner = admin.key("acme", role="owner")["secret"]
    member = admin.key("acme")
    path = f"{P}/keys/{member['id']}"
    off = admin.call(owner, "PATCH", path, json={"guardrails": "off"})
    assert off.status_code == 403 and off.json()["error"]["param"] == "guardrails"
    assert admin.ok(owner, "PATCH", path, json={"guardrails": "lenient"})["guardrails"] == "lenient"
    changed = admin.call(owner, "PATCH", path, json={"guardrails": "strict", "rpm": 5})
    assert changed.status_code == 403
    assert admin.ok(ADMIN_KEY, "GET", path)["rpm"] is None  # refused whole: nothing written
    project = admin.call(owner, "PATCH", P + "/projects/acme", json={"guardrails": "off"})
    assert project.status_code == 403
    made = admin.call(owner, "POST", P + "/keys", json={"project": "acme", "guardrails": "off"})
    assert made.status_code == 403


def test_explain_a_key_the_store_does_not_hold(admin: Admin) -> None:
    query = {"deployment": "chat", "key": "abcdefabcdef"}
    assert admin.call(ADMIN_KEY, "GET", P + "/guardrails/explain", params=query).status_code == 404
    admin.project("acme")
    admin.ok(ADMIN_KEY, "PATCH", P + "/projects/acme", json={"guardrails": "lenient"})
    shown = admin.ok(
        ADMIN_KEY, "GET", P + "/guardrails/explain", params={**query, "project": "acme"}
    )
    assert (shown["policy"], shown["chosen_by"]) == ("lenient", "project")
