"""The fast run's guard: no server started, no model loaded.

``make test-fast`` sets ``FAST_ENV`` and deselects the tests marked ``integration``, ``postgres``,
``redis``, ``local_model`` or ``slow``. Every helper that starts a server calls ``spawning`` first,
so a test that needs one but lacks its marker fails there, naming the marker, instead of quietly
making the fast run slow.
"""

from __future__ import annotations

import os

import pytest

FAST_ENV = "MODELYARD_TESTS_FAST"


def spawning(what: str, marker: str) -> None:
    if os.environ.get(FAST_ENV):
        pytest.fail(
            f"this test starts {what}, which the fast run leaves out: mark it "
            f"@pytest.mark.{marker} (or see the fixture table in tests/conftest.py)",
            pytrace=False,
        )
