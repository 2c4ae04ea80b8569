"""``x-modelyard-project`` on the admin API: a person with several projects (or a key, in its
own) chooses the one they act in, with their role there; a project they are no member of is a
403 naming it, one that does not exist a 400, a malformed value a 400 naming the header."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from modelyard.core.errors import InvalidRequest, PermissionDenied
from modelyard.services.acting import key_acting_in, requested_project
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.sso import Identity
from tests.fakes.oidc_provider import OidcProvider

from .conftest import ADMIN_KEY

P = "/admin/v1"
H = "x-modelyard-project"
OPERATOR = {"authorization": f"Bearer {ADMIN_KEY}"}
BOB = Identity(
    "https://idp", "bob", None, None, "owner", ("team-a",),
    (("team-a", "owner"), ("team-b", "member"), ("team-c", "owner"), ("team-c", "member")),
)  # fmt: skip


def test_a_persons_role_follows_the_project_they_act_in():
    assert (BOB.principal().role, BOB.principal().project_id) == ("owner", "team-a")
    assert (BOB.principal("team-b").role, BOB.principal("team-b").project_id) == (
        "member",
        "team-b",
    )
    assert BOB.principal("team-c").role == "owner"  # the higher of two rules for one project
    with pytest.raises(PermissionDenied) as info:
        BOB.principal("team-z")
    assert info.value.status == 403 and info.value.param == H
    assert "'team-z'" in info.value.message and "team-a, team-b, team-c" in info.value.message
    assert BOB.choices == ("team-a", "team-b", "team-c")
    boss = Identity("https://idp", "alice", None, None, "operator", (), ())
    assert boss.principal("team-z").role == "operator" and boss.choices == ()


def test_a_key_acts_in_its_own_project_and_an_operator_key_anywhere():
    member = Principal(key_id="k1", role="member", project_id="team-a")
    assert key_acting_in(member, "team-a") is member
    with pytest.raises(PermissionDenied, match="key k1 is not a member of project 'team-b'"):
        key_acting_in(member, "team-b")
    operator = Principal(key_id="op", role="operator")
    assert key_acting_in(operator, "team-b") is operator


@pytest.mark.parametrize("value", ["", "Team-A", "a b", "x" * 65, "../etc", "é"])
def test_a_malformed_project_is_a_400_naming_the_header(value: str):
    with pytest.raises(InvalidRequest) as info:
        requested_project(value)
    assert info.value.param == H and info.value.code == "invalid_project"
    assert len(info.value.message) < 200  # a long value is not echoed whole
    assert requested_project(None) is None and requested_project(" team-a ") == "team-a"


def _as(gateway: TestClient, auth: dict[str, str], project: str | None) -> Any:
    headers = {**auth, H: project} if project is not None else auth
    return gateway.get(P + "/me", headers=headers)


def test_the_admin_api_takes_the_header_from_tokens_and_keys(
    gateway: TestClient, provider: OidcProvider
):
    for project in ("team-a", "team-b"):
        assert gateway.post(P + "/projects", headers=OPERATOR, json={"id": project}).is_success
    bob = {"authorization": f"Bearer {provider.tokens_for('bob')['access_token']}"}
    me = _as(gateway, bob, None).json()
    assert (me["role"], me["project"]) == ("owner", "team-a")  # no header: as before
    me = _as(gateway, bob, "team-b").json()
    assert (me["role"], me["project"], me["user"]) == ("member", "team-b", "bob")
    keys = gateway.get(P + "/keys", headers={**bob, H: "team-b"}, params={"project": "team-b"})
    assert keys.status_code == 403  # a member of team-b manages no keys there
    assert gateway.get(P + "/keys", headers={**bob, H: "team-a"}).status_code == 200
    refused = _as(gateway, bob, "team-z")
    error = refused.json()["error"]
    assert refused.status_code == 403 and error["code"] == "not_a_member"
    assert "'team-z'" in error["message"] and error["param"] == H
    bad = _as(gateway, bob, "Team A")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == H
    alice = {"authorization": f"Bearer {provider.tokens_for('alice')['access_token']}"}
    assert _as(gateway, alice, "team-b").json()["role"] == "operator"
    unknown = _as(gateway, alice, "team-q")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_project"
    assert "'team-q'" in unknown.json()["error"]["message"]
    assert _as(gateway, OPERATOR, "team-q").status_code == 400  # an operator's key too
    secret = gateway.post(P + "/keys", headers=OPERATOR, json={"project": "team-a"}).json()
    member = {"authorization": f"Bearer {secret['secret']}"}
    assert _as(gateway, member, "team-a").json()["project"] == "team-a"
    other = _as(gateway, member, "team-b")
    assert other.status_code == 403 and "not a member of project 'team-b'" in other.text
    # A non-member learns nothing about which projects exist: 403 for a missing one too.
    assert _as(gateway, member, "team-q").status_code == 403
