"""A real OpenID Connect provider for the single sign-on tests: authlib's authorization server
(RFC 6749 authorization code grant, RFC 7636 PKCE required, OpenID Connect ID tokens with a
nonce, RFC 9068 JWT access tokens) on Flask, served by werkzeug in a thread on loopback.

Only what a test must steer is ours: who signs in (the ``login_hint`` picks a known user and
the provider consents at once, as a provider with a live session does), their claims, the
access tokens' lifetime, and ``rotate()``, which replaces the signing key and publishes only
the new one in the JWKS. Every protocol step (code issue and redemption, the PKCE check, token
and ID token signing) is authlib's.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import flask
import httpx2 as httpx
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oidc.core import OpenIDCode, UserInfo
from authlib.oidc.core.models import AuthorizationCodeMixin
from joserfc.jwk import KeySet, RSAKey
from markupsafe import escape
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

SCOPES = ("openid", "profile", "email", "groups")
CALLBACK = "http://127.0.0.1/cli-callback"  # where the command-line client's codes go
_POLL_S = 0.02  # how often its server loop looks for a shutdown


@dataclass(frozen=True)
class Person:
    sub: str
    claims: Mapping[str, Any]

    def get_user_id(self) -> str:
        return self.sub


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]  # authlib is untyped
    client_id: str
    redirect_uris: tuple[str, ...] = ()  # empty: any (the gateway's port is chosen at start)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return not self.redirect_uris or redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # public clients: PKCE instead of a secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"


@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: Person
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class OidcProvider:
    """The provider; ``issuer`` is its URL once started (``running()``)."""

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self.users: dict[str, Person] = {}
        self.clients = {c: Client(c) for c in ("modelyard", "cli")}
        self.key = self._new_key()
        self.token_lifetime_s = 3600
        self.jwks_requests = 0
        self.logouts: list[dict[str, str]] = []
        self.codes: dict[str, Code] = {}
        self.issuer = ""
        self.app = self._app()

    @staticmethod
    def _new_key() -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
        key.ensure_kid()
        return key

    def add_user(self, sub: str, **claims: Any) -> None:
        self.users[sub] = Person(sub, claims)

    def rotate(self) -> None:
        """Sign with a new key from now on; the JWKS publishes only the new one."""
        self.key = self._new_key()

    def _app(self) -> flask.Flask:
        app = flask.Flask("oidc-provider")
        server = AuthorizationServer(
            app, query_client=self.clients.get, save_token=lambda token, request: None
        )
        server.register_grant(_code_grant(self), [CodeChallenge(required=True), _openid(self)])
        self._access_tokens = _access_tokens(self)
        server.register_token_generator("default", self._access_tokens)
        _routes(app, server, self)
        return app

    @contextmanager
    def running(self) -> Iterator[OidcProvider]:
        previous = os.environ.get("AUTHLIB_INSECURE_TRANSPORT")
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback
        http: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=_Quiet
        )
        self.issuer = f"http://127.0.0.1:{http.server_port}"
        self._access_tokens.issuer = self.issuer
        # socketserver notices a shutdown only at its next poll (0.5 s by default): every stop
        # of the provider waited that long.
        thread = threading.Thread(
            target=http.serve_forever, args=(_POLL_S,), name="oidc-provider", daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            http.shutdown()
            thread.join(5)
            if previous is None:
                os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)
            else:
                os.environ["AUTHLIB_INSECURE_TRANSPORT"] = previous

    # --- a command-line client's sign-in, for tokens to call the admin API with -------------

    def tokens_for(self, sub: str, client_id: str = "cli") -> dict[str, Any]:
        """Run the authorization code flow with PKCE as ``client_id``, as ``sub``."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        query = {
            "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
            "scope": " ".join(SCOPES), "state": "s", "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256",
            "login_hint": sub,
        }  # fmt: skip
        with httpx.Client(base_url=self.issuer) as http:
            authorized = http.get("/authorize?" + urlencode(query))
            assert authorized.status_code == 302, authorized.text
            code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
            form = {
                "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                "client_id": client_id, "code_verifier": verifier,
            }  # fmt: skip
            answer = http.post("/token", data=form)
            assert answer.status_code == 200, answer.text
            tokens: dict[str, Any] = answer.json()
        return tokens


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # no line per request on the tests' output


def _code_grant(provider: OidcProvider) -> type[grants.AuthorizationCodeGrant]:
    class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ["none"]  # noqa: RUF012  # authlib's class attribute

        def save_authorization_code(self, code: str, request: Any) -> None:
            payload = request.payload
            provider.codes[code] = Code(
                code, request.client.client_id, payload.redirect_uri, payload.scope,
                request.user, payload.data.get("nonce"), payload.data.get("code_challenge"),
                payload.data.get("code_challenge_method"),
            )  # fmt: skip

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            found = provider.codes.get(code)
            return found if found is not None and found.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> Person:
            return authorization_code.user

    return CodeGrant


def _openid(provider: OidcProvider) -> OpenIDCode:
    class IdTokens(OpenIDCode):  # type: ignore[misc]
        def exists_nonce(self, nonce: str, request: Any) -> bool:
            return False

        def resolve_client_private_key(self, client: Client) -> RSAKey:
            return provider.key

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            return {
                "iss": provider.issuer,
                "aud": [client.client_id],
                "exp": int(time.time()) + provider.token_lifetime_s,
            }

        def get_encode_header(self, client: Client) -> dict[str, str]:
            return {"alg": "RS256", "kid": str(provider.key.kid)}

        def generate_user_info(self, user: Person, scope: str) -> UserInfo:
            return UserInfo(sub=user.sub, **user.claims)

    return IdTokens(require_nonce=True)


def _access_tokens(provider: OidcProvider) -> JWTBearerTokenGenerator:
    class AccessTokens(JWTBearerTokenGenerator):  # type: ignore[misc]
        def get_jwks(self) -> KeySet:
            return KeySet([provider.key])

        def get_audiences(self, client: Client, user: Person, scope: str) -> list[str]:
            return [client.client_id, provider.audience]

        def get_extra_claims(
            self, client: Client, grant_type: str, user: Person, scope: str
        ) -> dict[str, Any]:
            return dict(user.claims)

    def lifetime(client: Client, grant_type: str) -> int:
        return provider.token_lifetime_s

    return AccessTokens(issuer="", expires_generator=lifetime)  # its issuer set at start


def _sign_in_form(args: Mapping[str, str]) -> str:
    """The provider's own sign-in page: who are you (no password: a test provider), then the
    same authorization request again with ``login_hint``."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in args.items()
        if k != "login_hint"
    )
    return (
        "<!doctype html><title>Test identity provider</title><h1>Test identity provider</h1>"
        f'<form method="get" action="/authorize">{hidden}'
        '<label for="who">Username</label><input id="who" name="login_hint" required>'
        "<button>Continue</button></form>"
    )


def _routes(app: flask.Flask, server: AuthorizationServer, provider: OidcProvider) -> None:
    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        base = provider.issuer
        return {
            "issuer": base, "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token", "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/logout", "response_types_supported": ["code"],
            "subject_types_supported": ["public"], "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": SCOPES,
        }  # fmt: skip

    @app.get("/jwks")
    def jwks() -> Any:
        provider.jwks_requests += 1
        return KeySet([provider.key]).as_dict(private=False)

    @app.get("/authorize")
    def authorize() -> Any:
        hint = flask.request.args.get("login_hint")
        if not hint:  # a browser with no session here: the provider's sign-in form
            return _sign_in_form(flask.request.args)
        person = provider.users.get(hint)
        if person is None:
            return {"error": "login_required"}, 403
        try:
            grant = server.get_consent_grant(end_user=person)
        except OAuth2Error as error:  # a bad request: no redirect to an unchecked URI
            return {"error": error.error, "error_description": error.description}, 400
        return server.create_authorization_response(grant_user=person, grant=grant)

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    @app.get("/logout")
    def logout() -> Any:
        provider.logouts.append(dict(flask.request.args))
        target = flask.request.args.get("post_logout_redirect_uri")
        return flask.redirect(target) if target else ("signed out", 200)
