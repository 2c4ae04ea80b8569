"""Which of a client's ``anthropic-beta`` names reach the upstream, per request.

The operator decides with two comma-separated lists of shell-style patterns in the provider's
options: ``betas_allowed`` (default ``*``: every beta the client names) and ``betas_denied``
(default none; a denied name is never sent, even when allowed). The names the operator put in
the provider's own ``headers`` are always sent. A beta left out is not an error: the fields it
unlocks are still sent, and the upstream answers for them as it would without the beta.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

HEADER = "anthropic-beta"


def patterns(raw: str) -> list[str]:
    """A comma-separated option as its patterns."""
    return [item.strip() for item in raw.split(",") if item.strip()]


class BetaFilter:
    """The operator's allow and deny lists, applied to each request's betas."""

    def __init__(self, allowed: Sequence[str], denied: Sequence[str], configured: str) -> None:
        self._allowed = tuple(allowed)
        self._denied = tuple(denied)
        self._everything = self._allowed == ("*",) and not self._denied
        self._configured = tuple(n.strip() for n in configured.split(",") if n.strip())

    def passed(self, client: tuple[str, ...]) -> tuple[str, ...]:
        """The client's betas the operator lets through, in the client's order."""
        if self._everything:
            return client
        return tuple(name for name in client if self._allows(name))

    def headers(self, base: Mapping[str, str], client: tuple[str, ...]) -> Mapping[str, str]:
        """``base`` with the ``anthropic-beta`` header for this request (``base`` itself when
        the client named no beta, the common case)."""
        if not client:
            return base
        names = list(self._configured)
        names.extend(name for name in client if name not in names)
        return {**base, HEADER: ",".join(names)}

    def _allows(self, name: str) -> bool:
        if any(fnmatchcase(name, pattern) for pattern in self._denied):
            return False
        return any(fnmatchcase(name, pattern) for pattern in self._allowed)
