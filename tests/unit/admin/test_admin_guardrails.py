"""``GET /admin/v1/guardrails/explain``: the policy a call would get, most specific first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI

from .conftest import ADMIN_KEY, Admin, admin_settings, wait_for

P = "/admin/v1/guardrails/explain"


@pytest.fixture
def admin(env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI) -> Iterator[Admin]:
    base = admin_settings(upstream.base_url).model_dump(mode="python")
    base["providers"]["fake"]["api_key"] = "sk-upstream-admin-tests"
    pii = {"kind": "pii", "phases": ["input", "output"], "action": "redact"}
    base["guardrails"] = {
        "policies": {
            "pii": {"guards": [pii], "reversible": True},
            "strict": {"guards": [{"kind": "prompt_injection"}, {**pii, "action": "block"}]},
        },
        "default": "pii",
        "deployments": {"other": "strict"},
        "projects": {"a": "off"},
    }
    settings = Settings.model_validate(base)
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    with TestClient(create_app(settings, store_url=url)) as client:
        yield Admin(client)


def test_explain_picks_the_most_specific_attachment(admin: Admin) -> None:
    chat = admin.ok(ADMIN_KEY, "GET", P, params={"deployment": "chat"})
    assert (chat["policy"], chat["chosen_by"], chat["reversible"]) == ("pii", "default", True)
    other = admin.ok(ADMIN_KEY, "GET", P, params={"deployment": "other"})
    assert (other["policy"], other["chosen_by"]) == ("strict", "deployment")
    assert [(g["order"], g["name"], g["action"]) for g in other["guards"]] == [
        (1, "prompt_injection", "block"),
        (2, "pii", "block"),
    ]
    admin.project("a")
    key = admin.key("a", "member")
    wait_for(lambda: admin.call(key["secret"], "GET", "/admin/v1/me").status_code == 200)
    by_key = admin.ok(ADMIN_KEY, "GET", P, params={"deployment": "other", "key": key["id"]})
    assert (by_key["policy"], by_key["chosen_by"], by_key["project"]) == (None, "project", "a")
    assert by_key["guards"] == []


def test_explain_is_for_operators_and_needs_a_deployment(admin: Admin) -> None:
    later = admin.ok(ADMIN_KEY, "GET", P, params={"deployment": "not-yet"})
    assert (later["policy"], later["chosen_by"]) == ("pii", "default")
    missing = admin.call(ADMIN_KEY, "GET", P, params={"deployment": "chat", "key": "nokey0000000"})
    assert missing.status_code == 404
    admin.project("a")
    key = admin.key("a", "owner")
    wait_for(lambda: admin.call(key["secret"], "GET", "/admin/v1/me").status_code == 200)
    refused = admin.call(key["secret"], "GET", P, params={"deployment": "chat"})
    assert refused.status_code == 403
    no_deployment = admin.call(ADMIN_KEY, "GET", P)
    assert (
        no_deployment.status_code == 400 and no_deployment.json()["error"]["param"] == "deployment"
    )
