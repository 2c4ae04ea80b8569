"""Checking an OpenID Connect provider's tokens: the provider's discovery document and JWKS,
fetched asynchronously and cached, and JWT validation with joserfc.

A token is accepted when its signature verifies with a key of the provider's JWKS (by ``kid``,
with an algorithm from the config: never ``none`` nor a shared-secret ``HS*``), its issuer is
the configured one, its audience contains ours, and it is within ``exp``/``nbf``/``iat`` by
the injected clock (give or take the configured leeway). A ``kid`` the cached set lacks means
the provider rotated its keys: the set is fetched again, at most once per ``jwks_refetch_s``
(concurrent requests share one fetch), so forged ``kid`` values cannot make us hammer the
provider. The set is also fetched again once older than ``jwks_max_age_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from modelyard.config.sso import SsoConfig
from modelyard.core.errors import AuthenticationFailed, ModelyardError

log = logging.getLogger("modelyard.sso")
MAX_TOKEN_BYTES = 16 * 1024
MAX_DOCUMENT_BYTES = 512 * 1024
Clock = Callable[[], float]
Fetch = Callable[[str], Awaitable[Mapping[str, Any]]]


class SsoUnavailable(ModelyardError):
    """The identity provider cannot be reached or answered nonsense: 503, try again."""

    status = 503


@dataclass(frozen=True, slots=True)
class Metadata:
    """The parts of the provider's discovery document we use."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None

    @classmethod
    def of(cls, document: Mapping[str, Any], issuer: str) -> Metadata:
        found = {name: document.get(name) for name in cls.__slots__}
        if found["issuer"] != issuer:
            raise SsoUnavailable(
                f"the provider's discovery document names issuer {found['issuer']!r}, "
                f"not the configured {issuer!r}",
                code="sso_issuer_mismatch",
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(found[name], str) or not found[name]:
                raise SsoUnavailable(f"the provider's discovery document lacks {name}")
        end = found["end_session_endpoint"]
        return cls(
            issuer, str(found["authorization_endpoint"]), str(found["token_endpoint"]),
            str(found["jwks_uri"]), end if isinstance(end, str) and end else None,
        )  # fmt: skip


def http_fetch(session: Callable[[], aiohttp.ClientSession], timeout_s: float) -> Fetch:
    """GET a JSON document, bounded in time and size; any failure is ``SsoUnavailable``."""

    async def fetch(url: str) -> Mapping[str, Any]:
        try:
            async with session().get(
                url, timeout=aiohttp.ClientTimeout(total=timeout_s), allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise SsoUnavailable(f"the identity provider answered {response.status}")
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SsoUnavailable(
                f"the identity provider cannot be reached: {type(exc).__name__}"
            ) from exc
        return _document(body)

    return fetch


def _document(body: bytes) -> Mapping[str, Any]:
    import orjson

    if len(body) > MAX_DOCUMENT_BYTES:
        raise SsoUnavailable("the identity provider's document is too large")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SsoUnavailable("the identity provider's document is not JSON") from exc
    if not isinstance(document, dict):
        raise SsoUnavailable("the identity provider's document is not a JSON object")
    return document


class Jwks:
    """The provider's key set, cached; fetched again for an unknown ``kid`` (bounded) or when
    older than ``max_age_s``."""

    def __init__(
        self, fetch: Callable[[], Awaitable[Mapping[str, Any]]], clock: Clock,
        refetch_s: float, max_age_s: float,
    ) -> None:  # fmt: skip
        self._fetch = fetch
        self._clock = clock
        self._refetch_s = refetch_s
        self._max_age_s = max_age_s
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the set was fetched (for tests and logs)

    def _holds(self, kid: str | None) -> bool:
        keys = self._keys
        if keys is None:
            return False
        return kid is None or any(k.kid == kid for k in keys)

    async def keys_for(self, kid: str | None) -> KeySet:
        """A key set that holds ``kid`` if the provider has it."""
        now = self._clock()
        if self._holds(kid) and now - self._fetched_at < self._max_age_s:
            return self._keys  # type: ignore[return-value]  # _holds checked it is set
        async with self._lock:  # one fetch for every request waiting on the same rotation
            now = self._clock()
            stale = now - self._fetched_at >= self._max_age_s
            may_fetch = now - self._fetched_at >= self._refetch_s
            if (stale or not self._holds(kid)) and (may_fetch or self._keys is None):
                document = await self._fetch()
                try:
                    self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
                except (JoseError, KeyError, TypeError, ValueError) as exc:
                    raise SsoUnavailable("the identity provider's JWKS cannot be read") from exc
                self._fetched_at = now
                self.fetches += 1
            if self._keys is None:
                raise SsoUnavailable("the identity provider's JWKS is not available")
            return self._keys


def refused(why: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"invalid access token: {why}", code="invalid_token")


class TokenVerifier:
    """Verifies JWTs of one provider (access tokens, ID tokens) against its JWKS."""

    def __init__(self, config: SsoConfig, jwks: Jwks, clock: Clock) -> None:
        self._config = config
        self._jwks = jwks
        self._clock = clock
        self._algorithms = tuple(config.algorithms)

    async def verify(
        self, token: str, audience: str, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The claims of ``token``, or ``AuthenticationFailed`` saying why not. ``extra``:
        further claims that must have a given value (an ID token's ``nonce``)."""
        if len(token) > MAX_TOKEN_BYTES:
            raise refused("too long")
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise refused("not a signed JWT") from exc
        if header.get("alg") not in self._algorithms:
            raise refused(f"algorithm {str(header.get('alg'))[:16]!r} is not accepted")
        kid = header.get("kid")
        keys = await self._jwks.keys_for(kid if isinstance(kid, str) else None)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(self._algorithms))
        except JoseError as exc:
            raise refused(f"the signature does not verify ({exc.error})") from exc
        claims = decoded.claims
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self._config.issuer},
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        for name, value in (extra or {}).items():
            options[name] = {"essential": True, "value": value}
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()), leeway=self._config.leeway_s, **options
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise refused(f"{exc.error}: {exc.description or ''}".strip(": ")) from exc
        return claims
