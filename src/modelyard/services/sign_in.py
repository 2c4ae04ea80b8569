"""What the routes and the portal share with single sign-on, without the service itself.

The service (``services/sso.py``) imports joserfc and, through it, cryptography: about 9 MB of
resident memory that a gateway without ``sso:`` never uses. So the names every app needs (the
sign-in cookie and its lifetime, a finished sign-in, telling a bearer JWT from a key) live
here, and ``services/sso.py`` is imported only where an ``Sso`` is built (``services/root.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.tenancy.sso import Identity

COOKIE = "modelyard_sso"
SIGN_IN_TTL_S = 600


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A finished sign-in: who, their ID token (the provider wants it back at sign-out) and
    the local path they started from."""

    identity: Identity
    id_token: str
    return_to: str


def looks_like_jwt(token: str) -> bool:
    """A compact JWS (``header.payload.signature``, the header a JSON object): not a key."""
    return token.startswith("eyJ") and token.count(".") == 2
