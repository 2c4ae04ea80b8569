"""Single sign-on with an OpenID Connect provider: bearer access tokens for the admin API, and
the authorization code flow with PKCE for people signing in (``/auth/login`` → the provider →
``/auth/callback``), producing an ``Identity`` the portal's session takes over.

Nothing here is on the model-call path: the admin API asks ``principal_of`` only for a bearer
token shaped like a JWT, and only when ``sso:`` is configured. What travels between
``/auth/login`` and ``/auth/callback`` (state, nonce, PKCE verifier, where to return) is kept
in a short-lived cookie encrypted and authenticated with a key derived from
``sso.state_secret`` (JWE ``dir`` + A256GCM), so any replica can finish a sign-in another one
began. A person is recorded in the store when first seen and updated at each sign-in (``just in
time``: no provisioning step).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from modelyard.config.sso import SsoConfig
from modelyard.core.errors import AuthenticationFailed, InvalidRequest
from modelyard.services.sign_in import SIGN_IN_TTL_S, SignedIn
from modelyard.services.sso_tokens import (
    MAX_DOCUMENT_BYTES,
    Clock,
    Jwks,
    Metadata,
    SsoUnavailable,
    TokenVerifier,
    http_fetch,
)
from modelyard.store import Store
from modelyard.store.audit import Users
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.model import SsoUser
from modelyard.tenancy.sso import ClaimRule, Identity, identity_of

_SEEN_MAX = 10_000  # subjects remembered as recorded, per process, before starting over


def _rules(config: SsoConfig) -> tuple[tuple[ClaimRule, ...], ClaimRule | None]:
    rules = tuple(ClaimRule(r.claim, r.value, r.role, tuple(r.projects)) for r in config.roles)
    default = None
    if config.default_role is not None:
        default = ClaimRule("", "", config.default_role, tuple(config.default_projects))
    return rules, default


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _local_path(value: str | None) -> str:
    """Only a path of this server: never another site (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value[:2048]


class Sso:
    """One provider's relying party for this app; ``aclose`` when the app stops."""

    def __init__(self, config: SsoConfig, store: Store | None, clock: Clock = time.time) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self._http: aiohttp.ClientSession | None = None
        self._fetch = http_fetch(self._client, config.http_timeout_s)
        self._metadata: Metadata | None = None
        self._metadata_lock = asyncio.Lock()
        self.jwks = Jwks(self._fetch_jwks, clock, config.jwks_refetch_s, config.jwks_max_age_s)
        self.verifier = TokenVerifier(config, self.jwks, clock)
        self._rules, self._default = _rules(config)
        digest = hashlib.sha256(b"modelyard-sso-state\0" + config.state_secret.reveal().encode())
        self._cookie_key = OctKey.import_key(digest.digest())
        self._recorded: dict[str, tuple[str, tuple[str, ...]]] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:  # made inside the running loop, on first use
            self._http = aiohttp.ClientSession()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def metadata(self) -> Metadata:
        """The provider's discovery document, fetched on first use (a provider down at start
        does not stop the gateway; it is asked again at the next sign-in)."""
        if self._metadata is None:
            async with self._metadata_lock:
                if self._metadata is None:
                    url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                    self._metadata = Metadata.of(await self._fetch(url), self.config.issuer)
        return self._metadata

    async def _fetch_jwks(self) -> Mapping[str, Any]:
        return await self._fetch((await self.metadata()).jwks_uri)

    # --- bearer access tokens (the admin API) ----------------------------------------------

    async def principal_of(self, token: str, project: str | None = None) -> Principal:
        """The admin API's caller for a provider's access token, acting in ``project`` (the
        ``x-modelyard-project`` header; None: their first), or 401/403/503."""
        claims = await self.verifier.verify(token, self.config.expected_audience)
        identity = identity_of(self.config.issuer, claims, self._rules, self._default)
        if self._recorded.get(identity.subject) != (identity.role, identity.projects):
            await self.remember(identity)
        return identity.principal(project)

    async def remember(self, identity: Identity) -> None:
        """Record the person in the store (created when first seen, updated after)."""
        if self._store is not None:
            now = datetime.fromtimestamp(self._clock(), UTC)
            user = SsoUser(
                identity.issuer, identity.subject, identity.email, identity.name,
                identity.role, identity.projects, now, now,
            )  # fmt: skip
            async with self._store.transaction() as session:
                await Users(session).seen(user)
        if len(self._recorded) >= _SEEN_MAX:
            self._recorded.clear()
        self._recorded[identity.subject] = (identity.role, identity.projects)

    # --- the authorization code flow with PKCE ---------------------------------------------

    async def begin(
        self, callback_url: str, return_to: str | None, login_hint: str | None = None
    ) -> tuple[str, str]:
        """The provider's authorization URL to send the browser to, and the cookie value that
        must come back with the callback."""
        metadata = await self.metadata()
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": callback_url,
            "scope": " ".join(self.config.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint[:256]
        carried = {
            "state": state, "nonce": nonce, "verifier": verifier,
            "return_to": _local_path(return_to), "exp": self._clock() + SIGN_IN_TTL_S,
        }  # fmt: skip
        cookie = jwe.encrypt_compact(
            {"alg": "dir", "enc": "A256GCM"}, orjson.dumps(carried), self._cookie_key
        )
        return f"{metadata.authorization_endpoint}?{urlencode(params)}", cookie

    def _carried(self, cookie: str | None, state: str | None) -> dict[str, Any]:
        expired = InvalidRequest(
            "the sign-in expired or began in another browser: start again at /auth/login",
            code="sso_state_invalid",
        )
        if not cookie or not state:
            raise expired
        try:
            plain = jwe.decrypt_compact(cookie, self._cookie_key).plaintext or b""
            carried = orjson.loads(plain)
        except (JoseError, ValueError) as exc:
            raise expired from exc
        if not isinstance(carried, dict) or not hmac.compare_digest(
            str(carried.get("state", "")), state
        ):
            raise expired
        if float(carried.get("exp", 0)) < self._clock():
            raise expired
        return carried

    async def finish(
        self, params: Mapping[str, str], cookie: str | None, callback_url: str
    ) -> SignedIn:
        """Exchange the callback's code (with the PKCE verifier), check the ID token (issuer,
        audience, expiry, nonce), map the person, record them."""
        if "error" in params:
            raise AuthenticationFailed(
                f"the identity provider refused the sign-in: {params['error'][:64]}",
                code="sso_refused",
            )
        carried = self._carried(cookie, params.get("state"))
        code = params.get("code")
        if not code:
            raise InvalidRequest("the callback has no code", param="code", code="sso_no_code")
        tokens = await self._exchange(code, str(carried["verifier"]), callback_url)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SsoUnavailable("the identity provider returned no ID token")
        claims = await self.verifier.verify(
            id_token, self.config.client_id, {"nonce": carried["nonce"]}
        )
        identity = identity_of(self.config.issuer, claims, self._rules, self._default)
        await self.remember(identity)
        return SignedIn(identity, id_token, _local_path(str(carried.get("return_to"))))

    async def _exchange(self, code: str, verifier: str, callback_url: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code", "code": code, "redirect_uri": callback_url,
            "client_id": self.config.client_id, "code_verifier": verifier,
        }  # fmt: skip
        auth = None
        if self.config.client_secret is not None:
            auth = aiohttp.BasicAuth(self.config.client_id, self.config.client_secret.reveal())
        url = (await self.metadata()).token_endpoint
        timeout = aiohttp.ClientTimeout(total=self.config.http_timeout_s)
        try:
            async with self._client().post(url, data=form, auth=auth, timeout=timeout) as answer:
                body = await answer.content.read(MAX_DOCUMENT_BYTES + 1)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SsoUnavailable(
                f"the identity provider cannot be reached: {type(exc).__name__}"
            ) from exc
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SsoUnavailable("the token endpoint's answer is not JSON") from exc
        if status != 200 or not isinstance(document, dict):
            error = document.get("error") if isinstance(document, dict) else None
            raise AuthenticationFailed(
                f"the identity provider refused the code: {str(error)[:64]}",
                code="sso_refused",
            )
        return document

    async def logout_url(self, id_token_hint: str | None) -> str | None:
        """Where to send the browser to end the provider's session too (RP-initiated logout),
        if the provider offers it."""
        metadata = await self.metadata()
        if metadata.end_session_endpoint is None:
            return None
        params = {"client_id": self.config.client_id}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        if self.config.post_logout_redirect_url:
            params["post_logout_redirect_uri"] = self.config.post_logout_redirect_url
        return f"{metadata.end_session_endpoint}?{urlencode(params)}"
