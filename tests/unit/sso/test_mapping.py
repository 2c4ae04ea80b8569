"""Claims to role and projects: every matching rule counts, the highest role wins and brings
its projects, a person matching nothing is refused unless a default is configured."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelyard.config.sso import SsoConfig
from modelyard.core.errors import PermissionDenied
from modelyard.tenancy.sso import ClaimRule, identity_of

RULES = (
    ClaimRule("groups", "admins", "operator"),
    ClaimRule("groups", "a-leads", "owner", ("team-a",)),
    ClaimRule("groups", "b-leads", "owner", ("team-b",)),
    ClaimRule("groups", "c", "member", ("team-c",)),
    ClaimRule("department", "finance", "member", ("finance",)),
)


def test_the_highest_role_wins_with_its_projects_in_rule_order():
    who = identity_of("https://idp", {"sub": "u", "groups": ["c", "b-leads", "a-leads"]}, RULES)
    assert (who.role, who.projects) == ("owner", ("team-a", "team-b"))
    assert who.memberships == (("team-a", "owner"), ("team-b", "owner"), ("team-c", "member"))
    principal = who.principal()
    assert (principal.role, principal.project_id, principal.user) == ("owner", "team-a", "u")
    assert principal.key_id is None


def test_an_operator_acts_in_no_project_and_scalar_claims_match():
    admin = identity_of("https://idp", {"sub": "a", "groups": ["admins", "c"]}, RULES)
    assert admin.principal().role == "operator" and admin.principal().project_id is None
    finance = identity_of("https://idp", {"sub": "f", "department": "finance"}, RULES)
    assert (finance.role, finance.projects) == ("member", ("finance",))
    # A claim of another type never matches by accident.
    assert identity_of("x", {"sub": "g", "groups": "admins"}, RULES).role == "operator"
    with pytest.raises(PermissionDenied):
        identity_of("x", {"sub": "g", "groups": {"admins": True}}, RULES)


def test_no_match_is_refused_unless_a_default_is_set():
    with pytest.raises(PermissionDenied) as refused:
        identity_of("https://idp", {"sub": "m", "groups": ["contractors"]}, RULES)
    assert refused.value.code == "sso_no_role"
    default = ClaimRule("", "", "member", ("sandbox",))
    who = identity_of("https://idp", {"sub": "m", "groups": ["contractors"]}, RULES, default)
    assert (who.role, who.projects) == ("member", ("sandbox",))
    with pytest.raises(PermissionDenied, match="subject"):
        identity_of("https://idp", {"groups": ["admins"]}, RULES)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"roles": [{"value": "x", "role": "owner"}]}, "must name its projects"),
        ({"roles": [{"value": "x", "role": "member", "projects": ["Bad Id"]}]}, "project id"),
        ({"state_secret": "short"}, "at least 32"),
        ({"scopes": ["email"]}, "openid"),
        ({"algorithms": ["HS256"]}, "algorithms"),
        ({"issuer": "ftp://idp"}, "http"),
        ({"default_role": "member"}, "default_projects"),
    ],
)
def test_the_config_refuses_what_cannot_work(change: dict[str, object], message: str):
    base = {"issuer": "https://idp", "client_id": "m", "state_secret": "s" * 32}
    with pytest.raises(ValidationError, match=message):
        SsoConfig.model_validate({**base, **change})
