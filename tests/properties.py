"""How many examples a property test draws, by Hypothesis settings profile.

``make test`` (and CI) runs the full count each test asks for; ``make test-fast`` runs the
``fast`` profile (``--hypothesis-profile=fast``), which draws a quarter of it: every property
still runs, with its explicit ``@example`` cases, on every inner-loop run. A test states its
full count through ``examples(n)``; one that states none gets the profile's default.
"""

from __future__ import annotations

from hypothesis import settings

FULL_EXAMPLES = 100  # Hypothesis's own default, the ``full`` profile's
FAST_EXAMPLES = FULL_EXAMPLES // 4
# Never fewer, whatever a profile says: fewer draws rarely reach a property's corners.
MIN_EXAMPLES = 10


def register_profiles() -> None:
    """The profiles ``--hypothesis-profile`` chooses from (called by ``tests/conftest.py``,
    before Hypothesis's pytest plugin loads the chosen one)."""
    settings.register_profile("full", max_examples=FULL_EXAMPLES)
    settings.register_profile("fast", max_examples=FAST_EXAMPLES)


def examples(full: int) -> int:
    """``full`` under the full profile; under another, the same share of it as the profile's
    default is of Hypothesis's (read when the test module is imported, after the profile is
    loaded)."""
    current = settings().max_examples  # a fresh settings object takes the loaded profile's
    return max(MIN_EXAMPLES, full * current // FULL_EXAMPLES)
