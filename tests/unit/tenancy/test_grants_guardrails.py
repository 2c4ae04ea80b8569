"""``grants.guardrails_change``: an operator attaches, changes and removes any policy; an owner
attaches a policy to a key without one, and nothing else (``off`` would exempt the key)."""

from __future__ import annotations

import pytest

from modelyard.core.errors import PermissionDenied
from modelyard.tenancy.grants import guardrails_change
from modelyard.tenancy.keys import Role

CASES: list[tuple[Role, str | None, str | None, bool]] = [
    ("operator", "strict", "off", True),
    ("operator", None, "off", True),
    ("operator", "strict", None, True),
    ("owner", None, "strict", True),
    ("owner", "strict", "strict", True),  # unchanged
    ("owner", None, None, True),
    ("owner", None, "off", False),
    ("owner", "strict", "off", False),
    ("owner", "strict", "lenient", False),
    ("owner", "strict", None, False),
    ("member", None, "strict", True),  # roles are checked before (members manage no keys)
]


@pytest.mark.parametrize(("role", "before", "after", "allowed"), CASES)
def test_who_may_change_a_keys_policy(
    role: Role, before: str | None, after: str | None, allowed: bool
) -> None:
    if allowed:
        guardrails_change(role, before, after)
        return
    with pytest.raises(PermissionDenied) as info:
        guardrails_change(role, before, after)
    assert info.value.param == "guardrails"
    assert info.value.code == "grant_exceeds_own"
