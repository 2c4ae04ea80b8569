"""When to try again, and how long to wait: jittered exponential backoff inside a budget."""

from __future__ import annotations

import random

from modelyard.core.errors import ModelyardError
from modelyard.routing.table import RetryPolicy

# Upstream statuses worth another attempt; everything the client got wrong is not.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def is_retryable(err: ModelyardError) -> bool:
    upstream_status = getattr(err, "upstream_status", None)
    if upstream_status is not None:
        return upstream_status in RETRYABLE_STATUSES
    return err.retryable


def backoff_s(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
    ceiling = min(policy.max_backoff_s, policy.backoff_s * 2 ** max(0, attempt - 1))
    return rng.uniform(0, ceiling)
