import pytest

from modelyard.core.errors import AuthenticationFailed
from modelyard.tenancy.static_keys import StaticKeys, bearer_token


def test_open_when_no_keys():
    assert StaticKeys([]).authenticate(None).anonymous


def test_keys_are_checked_and_not_kept_in_clear():
    keys = StaticKeys(["alpha", "beta"])
    assert keys.authenticate("beta").key_id == "static-1"
    assert "alpha" not in repr(vars(keys))
    with pytest.raises(AuthenticationFailed) as info:
        keys.authenticate("gamma")
    assert info.value.code == "invalid_api_key"
    with pytest.raises(AuthenticationFailed) as info:
        keys.authenticate(None)
    assert info.value.code == "missing_api_key"


def test_bearer_token():
    assert bearer_token("Bearer abc", None) == "abc"
    assert bearer_token("bearer  abc ", None) == "abc"
    assert bearer_token("Basic abc", "xyz") == "xyz"
    assert bearer_token(None, None) is None
