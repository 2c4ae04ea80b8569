"""When to try again, and how long to wait: jittered exponential backoff inside a budget."""

from __future__ import annotations

import random

from modelyard.core.errors import ModelyardError
from modelyard.routing.table import RetryPolicy


def is_retryable(err: ModelyardError) -> bool:
    """Whether another attempt (same or other target) may succeed: the error's own answer.

    Which upstream failures are retryable is decided once, by the class
    ``providers.errors.POLICY`` picks for them; nothing here second-guesses it.
    """
    return err.retryable


def backoff_s(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
    ceiling = min(policy.max_backoff_s, policy.backoff_s * 2 ** max(0, attempt - 1))
    return rng.uniform(0, ceiling)
