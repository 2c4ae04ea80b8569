"""API keys from the config file: stored only as SHA-256 digests, compared in constant time.

The seam that full tenancy (projects, scoped keys, roles) replaces: anything that turns the
presented key into a ``Principal`` or raises ``AuthenticationFailed``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from modelyard.core.errors import AuthenticationFailed


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str | None
    anonymous: bool = False


ANONYMOUS = Principal(key_id=None, anonymous=True)


class StaticKeys:
    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def authenticate(self, presented: str | None) -> Principal:
        if not self._digests:
            return ANONYMOUS
        if not presented:
            raise AuthenticationFailed(
                "no API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        digest = hashlib.sha256(presented.encode()).digest()
        match = -1
        # Compare against every key so the time taken says nothing about which one matched.
        for i, known in enumerate(self._digests):
            if hmac.compare_digest(digest, known):
                match = i
        if match < 0:
            raise AuthenticationFailed("invalid API key", code="invalid_api_key")
        return Principal(key_id=f"static-{match}")


def bearer_token(authorization: str | None, api_key_header: str | None) -> str | None:
    """The key from ``Authorization: Bearer`` or the ``x-api-key`` header some SDKs use."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return api_key_header or None
