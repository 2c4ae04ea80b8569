"""HTTP headers every served dialect sends with an error."""

from __future__ import annotations

import math

from modelyard.core.errors import ModelyardError

# A 429 always says when to come back, even when the upstream that refused did not say.
DEFAULT_RATE_LIMIT_RETRY_S = 1.0


def error_headers(err: ModelyardError) -> dict[str, str]:
    """``retry-after`` in whole seconds (at least 1) when known, and always on a 429; the
    ``x-ratelimit-*`` state when one of our own limits refused the request."""
    headers: dict[str, str] = dict(getattr(err, "headers", None) or {})
    wait = err.retry_after
    if wait is None and err.status == 429:
        wait = DEFAULT_RATE_LIMIT_RETRY_S
    if wait is not None:
        headers["retry-after"] = str(max(1, math.ceil(wait)))
    return headers
