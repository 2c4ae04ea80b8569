"""Named, versioned agents: one in the config and ones made through the admin API, invoked on
``/v1/responses`` by ``agent:<name>`` and by an ``agent_reference``, re-pointed to another
deployment and rolled back without any change on the client's side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI
from tests.migrated import MigratedSqlite
from tests.unit.admin.conftest import ADMIN_KEY, UPSTREAM_KEY, Admin

CONFIG_AGENT = {
    "deployment": "chat",
    "instructions": "CONFIG-AGENT-RULES",
    "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
    "temperature": 0.25,
}


def agent_settings(fake_url: str, agents: dict[str, Any] | None = None) -> Settings:
    target = {"provider": "fake", "model": "gpt-4o-mini"}
    return Settings.model_validate(
        {
            "local": {"enabled": False},
            "providers": {
                "fake": {"type": "openai_compatible", "base_url": fake_url, "api_key": UPSTREAM_KEY}
            },
            "deployments": {
                "chat": {"targets": [target]},
                "other": {"targets": [{**target, "model": "gpt-4o"}]},
            },
            "agents": {"helper": CONFIG_AGENT} if agents is None else agents,
        }
    )


@pytest.fixture
def site(
    env: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI, migrated_sqlite: MigratedSqlite
) -> Iterator[Admin]:
    url = migrated_sqlite.url(tmp_path / "store.db")
    with TestClient(create_app(agent_settings(upstream.base_url), store_url=url)) as client:
        yield Admin(client)


def _respond(site: Admin, body: dict[str, Any], key: str = ADMIN_KEY) -> Any:
    return site.call(key, "POST", "/v1/responses", json=body)


def test_a_config_agent_by_model_name(site: Admin, upstream: FakeOpenAI):
    raw = _respond(site, {"model": "agent:helper", "input": "hello", "instructions": "MINE"})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert raw.headers["x-modelyard-agent"] == "helper@1"
    assert body["agent"] == {"type": "agent_id", "name": "helper", "version": "1"}
    assert body["model"] == "chat" and body["temperature"] == 0.25
    assert body["status"] == "completed" and body["output"]
    sent = upstream.last_request.json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0]["content"] == "CONFIG-AGENT-RULES\n\nMINE"
    assert [t["function"]["name"] for t in sent["tools"]] == ["lookup"]


@pytest.mark.parametrize("key", ["agent", "agent_reference"])
def test_a_config_agent_by_foundry_reference(site: Admin, upstream: FakeOpenAI, key: str):
    ref = {"type": "agent_reference", "name": "helper", "version": "1"}
    raw = _respond(site, {key: ref, "input": "by reference"})
    assert raw.status_code == 200, raw.text
    assert raw.headers["x-modelyard-agent"] == "helper@1"
    assert upstream.last_request.json["messages"][0]["content"] == "CONFIG-AGENT-RULES"


def test_an_unknown_agent_is_a_404_naming_it(site: Admin):
    for body, param in (
        ({"model": "agent:nobody", "input": "x"}, "model"),
        ({"model": "agent:helper@9", "input": "x"}, "model"),
        ({"agent": {"type": "agent_reference", "name": "nobody"}, "input": "x"}, "agent"),
    ):
        raw = _respond(site, body)
        assert raw.status_code == 404, raw.text
        error = raw.json()["error"]
        assert error["code"] == "agent_not_found" and error["param"] == param
        assert "helper@9" in body.get("model", "") or "nobody" in error["message"]


def test_an_api_agent_is_re_pointed_and_rolled_back(site: Admin, upstream: FakeOpenAI):
    created = site.ok(
        ADMIN_KEY,
        "POST",
        "/admin/v1/agents",
        json={"name": "writer", "deployment": "chat", "instructions": "WRITER-V1"},
    )
    assert created["version"] == 1 and created["live"] and created["source"] == "api"
    client_body = {"model": "agent:writer", "input": "draft"}
    assert _respond(site, client_body).headers["x-modelyard-agent"] == "writer@1"
    assert upstream.last_request.json["model"] == "gpt-4o-mini"

    second = site.ok(
        ADMIN_KEY,
        "POST",
        "/admin/v1/agents/writer/versions",
        json={"deployment": "other", "instructions": "WRITER-V2"},
    )
    assert second["version"] == 2 and second["live"]
    raw = _respond(site, client_body)  # the same request: now on the other deployment
    assert raw.headers["x-modelyard-agent"] == "writer@2" and raw.json()["model"] == "other"
    assert upstream.last_request.json["model"] == "gpt-4o"
    assert upstream.last_request.json["messages"][0]["content"] == "WRITER-V2"

    pinned = _respond(site, {"model": "agent:writer@1", "input": "draft"})
    assert pinned.headers["x-modelyard-agent"] == "writer@1"

    rolled = site.ok(ADMIN_KEY, "POST", "/admin/v1/agents/writer/rollback", json={})
    assert rolled["live_version"] == 1 and rolled["latest_version"] == 2
    _respond(site, client_body)
    assert upstream.last_request.json["model"] == "gpt-4o-mini"

    live = site.ok(ADMIN_KEY, "POST", "/admin/v1/agents/writer/live", json={"version": 2})
    assert live["live_version"] == 2 and live["deployment"] == "other"
    shown = site.ok(ADMIN_KEY, "GET", "/admin/v1/agents/writer/versions/1")
    assert shown["definition"]["instructions"] == "WRITER-V1" and not shown["live"]


def test_listing_shows_config_and_api_agents(site: Admin):
    site.ok(ADMIN_KEY, "POST", "/admin/v1/agents", json={"name": "api-one", "deployment": "chat"})
    listed = site.ok(ADMIN_KEY, "GET", "/admin/v1/agents")
    origins = {a["name"]: a["origin"] for a in listed["data"]}
    assert origins == {"helper": "config", "api-one": "api"}


def test_a_version_not_made_live_waits(site: Admin):
    site.ok(ADMIN_KEY, "POST", "/admin/v1/agents", json={"name": "slow", "deployment": "chat"})
    later = site.ok(
        ADMIN_KEY,
        "POST",
        "/admin/v1/agents/slow/versions",
        json={"deployment": "other", "live": False},
    )
    assert later["version"] == 2 and not later["live"]
    assert _respond(site, {"model": "agent:slow", "input": "x"}).headers["x-modelyard-agent"] == (
        "slow@1"
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "bad", "deployment": "nowhere"}, "deployment"),
        (
            {"name": "bad", "deployment": "chat", "tools": [{"type": "mcp"}]},
            "tools[0].server_label",
        ),
        ({"name": "bad", "deployment": "chat", "temperature": 3}, "temperature"),
        ({"name": "bad", "deployment": "chat", "surprise": 1}, "surprise"),
        ({"name": "no/slash", "deployment": "chat"}, "name"),
    ],
)
def test_a_bad_definition_is_a_400_naming_the_field(site: Admin, body: dict[str, Any], param: str):
    raw = site.call(ADMIN_KEY, "POST", "/admin/v1/agents", json=body)
    assert raw.status_code == 400, raw.text
    assert raw.json()["error"]["param"].startswith(param)


def test_only_operators_write_and_config_agents_are_not_deleted(site: Admin):
    site.project("team")
    member = site.key("team")["secret"]
    raw = site.call(member, "POST", "/admin/v1/agents", json={"name": "x", "deployment": "chat"})
    assert raw.status_code == 403
    assert site.call(member, "GET", "/admin/v1/agents").status_code == 200
    refused = site.call(ADMIN_KEY, "DELETE", "/admin/v1/agents/helper")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "agent_in_config"
    site.ok(ADMIN_KEY, "POST", "/admin/v1/agents", json={"name": "gone", "deployment": "chat"})
    site.ok(ADMIN_KEY, "DELETE", "/admin/v1/agents/gone")
    assert site.call(ADMIN_KEY, "GET", "/admin/v1/agents/gone").status_code == 404
    assert _respond(site, {"model": "agent:gone", "input": "x"}).status_code == 404


def test_request_tools_that_clash_are_refused(site: Admin):
    body = {
        "model": "agent:helper",
        "input": "x",
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
    }
    raw = _respond(site, body)
    assert raw.status_code == 400 and raw.json()["error"]["param"] == "tools[0]"
