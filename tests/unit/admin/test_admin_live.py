"""Keys made through the admin API act on the running server without a restart (the real key
refresher), limits set there are enforced, and every call shows up in usage, grouped and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from modelyard.core.money import cost_micros
from modelyard.services.usage_export import CSV_FIELDS

from .conftest import ADMIN_KEY, PRICE_IN, PRICE_OUT, Admin, wait_for

P = "/admin/v1"


def test_created_key_works_and_revoked_key_stops(admin: Admin):
    admin.project("team")
    key = admin.key("team")
    secret = key["secret"]
    wait_for(lambda: admin.chat(secret).status_code == 200)
    assert admin.chat(secret).json()["choices"][0]["message"]["content"]

    admin.ok(ADMIN_KEY, "POST", f"{P}/keys/{key['id']}/revoke")
    wait_for(lambda: admin.chat(secret).status_code == 401)
    refused = admin.chat(secret).json()["error"]
    assert refused["code"] == "revoked_api_key"


def test_key_limits_set_through_the_api_are_enforced(admin: Admin):
    admin.project("team")
    key = admin.key("team", deployments=["chat"])
    secret = key["secret"]
    wait_for(lambda: admin.chat(secret).status_code == 200)
    # The key may call only "chat".
    other = admin.chat(secret, model="other")
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "deployment_not_allowed"
    admin.ok(ADMIN_KEY, "PATCH", f"{P}/keys/{key['id']}", json={"rpm": 1})
    # Once the refresher has the new limit, the minute's second request is refused.
    wait_for(lambda: admin.chat(secret).status_code == 429)
    admin.ok(ADMIN_KEY, "PATCH", f"{P}/keys/{key['id']}", json={"rpm": None})
    wait_for(lambda: admin.chat(secret).status_code == 200)


def _usage(admin: Admin, query: str) -> dict[str, Any]:
    report: dict[str, Any] = admin.ok(ADMIN_KEY, "GET", f"{P}/usage?{query}")
    return report


def _records(admin: Admin, query: str = "") -> list[dict[str, str]]:
    response = admin.call(ADMIN_KEY, "GET", f"{P}/usage.csv?{query}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == CSV_FIELDS
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_usage_grouped_and_exported(admin: Admin):
    admin.project("a")
    admin.project("b")
    key_a, key_b = admin.key("a"), admin.key("b")
    wait_for(lambda: admin.chat(key_b["secret"]).status_code == 200)
    for secret, model in [(key_a["secret"], "chat"), (key_a["secret"], "other")]:
        assert admin.chat(secret, model).status_code == 200
    admin.chat(key_b["secret"], "chat")
    # The ledger is written in batches off the request path: wait for all four rows.
    wait_for(lambda: _usage(admin, "by=project")["totals"]["requests"] == 4)

    by_project = {r["project"]: r for r in _usage(admin, "by=project")["data"]}
    assert (by_project["a"]["requests"], by_project["b"]["requests"]) == (2, 2)
    by_deployment = {r["deployment"]: r["requests"] for r in _usage(admin, "by=deployment")["data"]}
    assert by_deployment == {"chat": 3, "other": 1}
    by_model = {r["model"]: r["requests"] for r in _usage(admin, "by=model&project=a")["data"]}
    assert by_model == {"gpt-4o-mini": 1, "gpt-4o": 1}
    by_key = {r["key"]: r["requests"] for r in _usage(admin, "by=key")["data"]}
    assert by_key == {key_a["id"]: 2, key_b["id"]: 2}
    days = _usage(admin, "by=day&since=1d")["data"]
    assert len(days) == 1 and days[0]["requests"] == 4
    assert _usage(admin, "by=day&until=1d")["data"] == []

    rows = _records(admin)
    assert len(rows) == 4
    for row in rows:  # each row's cost is the price arithmetic on its own tokens
        expected = cost_micros(int(row["input_tokens"]), PRICE_IN * 10**6) + cost_micros(
            int(row["output_tokens"]), PRICE_OUT * 10**6
        )
        assert int(row["cost_micros"]) == expected > 0
    report = _usage(admin, "by=project")
    assert report["totals"]["cost_micros"] == sum(int(r["cost_micros"]) for r in rows)
    assert {r["project_id"] for r in _records(admin, "project=a")} == {"a"}
    as_csv = admin.call(ADMIN_KEY, "GET", f"{P}/usage?format=csv&key={key_a['id']}&limit=1")
    assert as_csv.headers["x-modelyard-truncated"] == "true"
    assert len(as_csv.text.strip().splitlines()) == 2


def test_members_and_owners_see_only_their_usage(admin: Admin):
    admin.project("a")
    owner, member = admin.key("a", "owner"), admin.key("a")
    wait_for(lambda: admin.chat(member["secret"]).status_code == 200)
    admin.chat(owner["secret"])
    wait_for(lambda: _usage(admin, "by=key")["totals"]["requests"] == 2)
    mine = admin.ok(member["secret"], "GET", f"{P}/usage?by=key")["data"]
    assert [r["key"] for r in mine] == [member["id"]]
    whole = admin.ok(owner["secret"], "GET", f"{P}/usage?by=key")["data"]
    assert {r["key"] for r in whole} == {owner["id"], member["id"]}
    rows = admin.call(member["secret"], "GET", f"{P}/usage.csv").text.strip().splitlines()
    assert len(rows) == 2 and member["id"] in rows[1]
