"""Keys: the format, digests only, constant-time matching, expiry, revocation, scoping."""

from datetime import UTC, datetime, timedelta

import pytest

from modelyard.core.errors import AuthenticationFailed, PermissionDenied
from modelyard.tenancy.keys import (
    KeyRing,
    Principal,
    UnknownKey,
    bearer_token,
    key_id_of,
    new_key,
)
from modelyard.tenancy.model import ApiKey, Limits, Project

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _stored(role: str = "member", **changes: object) -> tuple[ApiKey, str]:
    fresh = new_key()
    fields: dict[str, object] = {
        "id": fresh.id,
        "digest": fresh.digest,
        "role": role,
        "project_id": "p1",
        "name": None,
        "deployments": None,
        "limits": Limits(rpm=5),
        "expires_at": None,
        "revoked_at": None,
        "created_at": NOW,
    }
    fields.update(changes)
    return ApiKey(**fields), fresh.secret  # type: ignore[arg-type]


def test_new_keys_have_the_documented_form_and_are_unique():
    keys = {new_key().secret for _ in range(200)}
    assert len(keys) == 200
    for key in list(keys)[:20]:
        assert key.startswith("my-") and key_id_of(key) == key.split("-")[1]
        assert len(key) >= 3 + 12 + 1 + 40


def test_open_when_no_keys_exist():
    assert KeyRing().authenticate(None).anonymous


def test_a_stored_key_authenticates_to_its_project_and_limits():
    key, secret = _stored()
    project = Project("p1", None, Limits(tpm=1000), NOW)
    ring = KeyRing([key], [project])
    principal = ring.authenticate(secret, NOW)
    assert (principal.key_id, principal.project_id, principal.role) == (key.id, "p1", "member")
    assert principal.key_limits == Limits(rpm=5)
    assert principal.project_limits == Limits(tpm=1000)
    assert secret not in repr(vars(ring))


def test_a_wrong_secret_for_a_known_id_is_refused():
    key, secret = _stored()
    ring = KeyRing([key])
    with pytest.raises(AuthenticationFailed) as info:
        ring.authenticate(secret[:-2] + ("AA" if not secret.endswith("AA") else "BB"), NOW)
    assert info.value.code == "invalid_api_key"
    with pytest.raises(AuthenticationFailed) as info:
        ring.authenticate(None, NOW)
    assert info.value.code == "missing_api_key"


def test_revoked_and_expired_keys_are_refused_with_their_reason():
    revoked, s1 = _stored(revoked_at=NOW)
    expired, s2 = _stored(expires_at=NOW - timedelta(seconds=1))
    naive, s3 = _stored(expires_at=(NOW + timedelta(days=1)).replace(tzinfo=None))
    ring = KeyRing([revoked, expired, naive])
    with pytest.raises(AuthenticationFailed, match="revoked"):
        ring.authenticate(s1, NOW)
    with pytest.raises(AuthenticationFailed, match="expired"):
        ring.authenticate(s2, NOW)
    assert ring.authenticate(s3, NOW).key_id == naive.id  # SQLite's naive times are UTC


def test_bootstrap_keys_match_by_digest():
    ring = KeyRing(
        bootstrap=[("alpha", Principal("config-0")), ("root", Principal("a", role="operator"))]
    )
    assert ring.authenticate("root").role == "operator"
    assert ring.authenticate("alpha").key_id == "config-0"
    with pytest.raises(AuthenticationFailed):
        ring.authenticate("gamma")


def test_a_key_scoped_to_deployments_may_call_only_those():
    principal = Principal("k", deployments=frozenset({"chat", "embed"}))
    principal.may_call("chat")
    with pytest.raises(PermissionDenied) as info:
        principal.may_call("gpt-big")
    assert "chat, embed" in info.value.message


def test_bearer_token():
    assert bearer_token("Bearer abc", None) == "abc"
    assert bearer_token("bearer  abc ", None) == "abc"
    assert bearer_token("Basic abc", "xyz") == "xyz"
    assert bearer_token(None, None) is None


def test_a_key_of_our_shape_the_ring_does_not_hold_asks_for_a_look_in_the_store():
    stored, secret = _stored()
    unknown = new_key().secret
    ring = KeyRing([stored], bootstrap=[("root", Principal("a", role="operator"))])
    with pytest.raises(UnknownKey):
        ring.authenticate(unknown, NOW, may_look_up=True)
    for presented in ("root", secret):  # known keys never ask
        assert ring.authenticate(presented, NOW, may_look_up=True).key_id
    for other in ("sk-not-ours", secret[:-2] + "zz"):  # not our shape, or a wrong secret
        with pytest.raises(AuthenticationFailed) as refused:
            ring.authenticate(other, NOW, may_look_up=True)
        assert type(refused.value) is AuthenticationFailed
    with pytest.raises(AuthenticationFailed, match="invalid API key"):
        ring.authenticate(unknown, NOW)  # without the look-up: a plain 401
    # With no keys at all (open mode) a key of ours is looked for before serving anonymously.
    with pytest.raises(UnknownKey):
        KeyRing().authenticate(unknown, may_look_up=True)
    assert KeyRing().authenticate("sk-anything", may_look_up=True).anonymous
    assert KeyRing().authenticate(unknown).anonymous
