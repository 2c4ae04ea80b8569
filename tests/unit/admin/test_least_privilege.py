"""Issue 17 #5 through the real admin API: an owner grants nothing wider than its own key.

Before the fix an owner limited to deployment ``chat`` minted a member key for every deployment
(``deployments: null``) that then called ``other``, and cleared the limits of its own key."""

from __future__ import annotations

from typing import Any

from .conftest import ADMIN_KEY, Admin, wait_for

P = "/admin/v1"


def _owner(admin: Admin, **grant: Any) -> dict[str, Any]:
    admin.project("p")
    owner = admin.key("p", "owner", **grant)
    wait_for(lambda: admin.call(owner["secret"], "GET", P + "/me").status_code == 200)
    return owner


def test_an_owner_limited_to_one_deployment_cannot_mint_a_key_for_every_deployment(
    admin: Admin,
):
    owner = _owner(admin, deployments=["chat"])
    # The request: no deployments named. The key gets the owner's, not every one.
    made = admin.ok(owner["secret"], "POST", P + "/keys", json={"project": "p", "role": "member"})
    assert made["deployments"] == ["chat"]
    wait_for(lambda: admin.chat(made["secret"]).status_code == 200)
    refused = admin.chat(made["secret"], model="other")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "deployment_not_allowed"
    # Naming a deployment beyond its own is refused, naming the field and what it may grant.
    wider = admin.call(
        owner["secret"], "POST", P + "/keys", json={"project": "p", "deployments": ["other"]}
    )
    assert wider.status_code == 403, wider.text
    error = wider.json()["error"]
    assert (error["param"], error["code"]) == ("deployments", "grant_exceeds_own")
    assert "[chat]" in error["message"]
    # The operator is not bound by it.
    assert admin.key("p", deployments=["other"])["deployments"] == ["other"]


def test_an_owner_cannot_clear_or_raise_its_own_limits(admin: Admin):
    owner = _owner(admin, rpm=5, daily_budget_usd="1.5")
    own = P + f"/keys/{owner['id']}"
    for body, param in (
        ({"rpm": None}, "rpm"),
        ({"rpm": 6}, "rpm"),
        ({"daily_budget_usd": None}, "daily_budget_usd"),
        ({"daily_budget_usd": "2"}, "daily_budget_usd"),
    ):
        response = admin.call(owner["secret"], "PATCH", own, json=body)
        assert response.status_code == 403, (body, response.text)
        assert response.json()["error"]["param"] == param
    # Narrowing its own key is allowed, and then the narrower limit is its bound at once.
    assert admin.ok(owner["secret"], "PATCH", own, json={"rpm": 3})["rpm"] == 3
    back = admin.call(owner["secret"], "PATCH", own, json={"rpm": 5})
    assert back.status_code == 403, back.text
    # A member key it makes inherits its limits, and cannot be made wider.
    made = admin.ok(owner["secret"], "POST", P + "/keys", json={"project": "p"})
    assert (made["rpm"], made["daily_budget_usd"]) == (3, "1.5")
    # tpm: the owner has no tpm limit, so "none" is within its own.
    untouched = {"project": "p", "tpm": None}
    assert admin.ok(owner["secret"], "POST", P + "/keys", json=untouched)["tpm"] is None
    member = P + f"/keys/{made['id']}"
    assert admin.call(owner["secret"], "PATCH", member, json={"rpm": 4}).status_code == 403
    assert admin.ok(owner["secret"], "PATCH", member, json={"rpm": 2})["rpm"] == 2
    # The operator may widen anything.
    assert admin.ok(ADMIN_KEY, "PATCH", own, json={"rpm": None})["rpm"] is None


def test_a_key_made_by_an_expiring_owner_expires_no_later(admin: Admin):
    owner = _owner(admin, expires_in="1d")
    made = admin.ok(owner["secret"], "POST", P + "/keys", json={"project": "p"})
    assert made["expires_at"] == owner["expires_at"]
    later = admin.call(
        owner["secret"], "POST", P + "/keys", json={"project": "p", "expires_in": "2d"}
    )
    assert later.status_code == 403 and later.json()["error"]["param"] == "expires_in"
    sooner = {"project": "p", "expires_in": "12h"}
    assert admin.ok(owner["secret"], "POST", P + "/keys", json=sooner)["expires_at"] is not None


def test_an_owner_cannot_mint_an_operator_key(admin: Admin):
    owner = _owner(admin)
    response = admin.call(owner["secret"], "POST", P + "/keys", json={"role": "operator"})
    assert response.status_code == 403
