"""Access tokens of a real OpenID Connect provider checked by ``TokenVerifier``: signature by
the JWKS key named by ``kid``, issuer, audience, expiry by an injected clock; a rotated key is
fetched once; forged, foreign and expired tokens are refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from modelyard.core.errors import AuthenticationFailed
from modelyard.services.sso import Sso
from tests.fakes.oidc_provider import OidcProvider

from .conftest import AUDIENCE, sso_settings

REFETCH_S = 30


class Clock:
    """Seconds since the epoch: the real time until a test sets ``now``, then moved by hand.

    Frozen from the start, it would call a token the provider signs (at the real time) more
    than the leeway after the fixture was made "issued in the future", as a slow machine can."""

    def __init__(self) -> None:
        self._set: float | None = None

    @property
    def now(self) -> float:
        return time.time() if self._set is None else self._set

    @now.setter
    def now(self, value: float) -> None:
        self._set = value

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def sso(provider: OidcProvider, clock: Clock) -> AsyncIterator[Sso]:
    config = sso_settings(provider.issuer, leeway_s=5, jwks_refetch_s=REFETCH_S).sso
    assert config is not None
    found = Sso(config, None, clock)
    yield found
    await found.aclose()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def load(part: str) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        )
        return loaded

    header, payload, _ = token.split(".")
    return load(header), load(payload)


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(part)).rstrip(b"=").decode()


async def test_a_providers_access_token_is_accepted(provider: OidcProvider, sso: Sso):
    token = provider.tokens_for("alice")["access_token"]
    claims = await sso.verifier.verify(token, AUDIENCE)
    assert (claims["sub"], claims["iss"], claims["groups"]) == (
        "alice",
        provider.issuer,
        ["platform-admins"],
    )
    assert sso.jwks.fetches == 1
    await sso.verifier.verify(token, AUDIENCE)
    assert sso.jwks.fetches == 1  # cached


async def test_expiry_follows_the_injected_clock(provider: OidcProvider, sso: Sso, clock: Clock):
    token = provider.tokens_for("alice")["access_token"]
    expires = _parts(token)[1]["exp"]
    clock.now = expires + 4  # within the leeway (5 s)
    await sso.verifier.verify(token, AUDIENCE)
    clock.now = expires + 5
    with pytest.raises(AuthenticationFailed, match="expired"):
        await sso.verifier.verify(token, AUDIENCE)
    issued = _parts(token)[1]["iat"]
    clock.now = issued - 60  # a token from the future
    with pytest.raises(AuthenticationFailed, match="issued in the future"):
        await sso.verifier.verify(token, AUDIENCE)


async def test_another_audience_or_issuer_is_refused(provider: OidcProvider, sso: Sso):
    token = provider.tokens_for("alice")["access_token"]
    with pytest.raises(AuthenticationFailed, match="aud"):
        await sso.verifier.verify(token, "some-other-api")
    other = OidcProvider(AUDIENCE)  # the same software elsewhere: another issuer
    other.add_user("alice", groups=["platform-admins"])
    other.key = provider.key  # even signed with the very key we trust
    with other.running():
        foreign = other.tokens_for("alice")["access_token"]
    with pytest.raises(AuthenticationFailed, match="iss"):
        await sso.verifier.verify(foreign, AUDIENCE)


async def test_forged_tokens_are_refused(provider: OidcProvider, sso: Sso):
    genuine = provider.tokens_for("alice")["access_token"]
    header, claims = _parts(genuine)
    claims["groups"] = ["platform-admins", "everything"]
    intruder = RSAKey.generate_key(2048)
    same_kid = jwt.encode({"alg": "RS256", "kid": header["kid"]}, claims, intruder)
    with pytest.raises(AuthenticationFailed, match="signature"):
        await sso.verifier.verify(same_kid, AUDIENCE)
    # The public key's bytes as an HMAC secret (the classic RS256 -> HS256 confusion).
    signing_input = f"{_b64({'alg': 'HS256', 'kid': header['kid']})}.{_b64(claims)}"
    secret = provider.key.as_pem(private=False)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    hs = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(AuthenticationFailed, match="HS256"):
        await sso.verifier.verify(hs, AUDIENCE)
    unsigned = f"{_b64({'alg': 'none', 'kid': header['kid']})}.{_b64(claims)}."
    with pytest.raises(AuthenticationFailed, match="none"):
        await sso.verifier.verify(unsigned, AUDIENCE)
    tampered = genuine.split(".")
    tampered[1] = _b64(claims)
    with pytest.raises(AuthenticationFailed, match="signature"):
        await sso.verifier.verify(".".join(tampered), AUDIENCE)
    for junk in ("not-a-jwt", "eyJhbGciOiJSUzI1NiJ9.e30", "a" * 20_000):
        with pytest.raises(AuthenticationFailed):
            await sso.verifier.verify(junk, AUDIENCE)


async def test_a_rotated_key_is_fetched_once_and_the_old_one_dropped(
    provider: OidcProvider, sso: Sso, clock: Clock
):
    before = provider.tokens_for("alice")["access_token"]
    await sso.verifier.verify(before, AUDIENCE)
    assert sso.jwks.fetches == 1
    clock.now += REFETCH_S  # the bound on refetches has passed since the first fetch
    provider.rotate()
    after = provider.tokens_for("alice")["access_token"]
    assert _parts(after)[0]["kid"] != _parts(before)[0]["kid"]
    # Many requests with the new key at once: one fetch between them.
    await asyncio.gather(*(sso.verifier.verify(after, AUDIENCE) for _ in range(5)))
    assert sso.jwks.fetches == 2
    with pytest.raises(AuthenticationFailed, match="signature"):
        await sso.verifier.verify(before, AUDIENCE)  # its key is no longer published
    assert sso.jwks.fetches == 2  # and asking for it again within the bound fetches nothing


async def test_unknown_key_ids_cannot_make_us_hammer_the_provider(
    provider: OidcProvider, sso: Sso, clock: Clock
):
    genuine = provider.tokens_for("alice")["access_token"]
    await sso.verifier.verify(genuine, AUDIENCE)
    claims = _parts(genuine)[1]
    intruder = RSAKey.generate_key(2048)
    requests_before = provider.jwks_requests
    for n in range(20):
        forged = jwt.encode({"alg": "RS256", "kid": f"made-up-{n}"}, claims, intruder)
        with pytest.raises(AuthenticationFailed):
            await sso.verifier.verify(forged, AUDIENCE)
    assert provider.jwks_requests == requests_before  # within the bound: no fetch at all
    clock.now += REFETCH_S
    for n in range(20):
        forged = jwt.encode({"alg": "RS256", "kid": f"later-{n}"}, claims, intruder)
        with pytest.raises(AuthenticationFailed):
            await sso.verifier.verify(forged, AUDIENCE)
    assert provider.jwks_requests == requests_before + 1  # one fetch per interval
