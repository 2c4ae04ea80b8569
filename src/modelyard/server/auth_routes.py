"""``/auth/login``, ``/auth/callback``, ``/auth/logout``: signing people in with the OpenID
Connect provider of ``sso:`` (authorization code flow with PKCE; ``services/sso.py``).

What a finished sign-in becomes is the ``SignInSessions`` object's business: the portal provides one
(``portal.auth.PortalSignIn``, behind ``server.portal_mount.LazySignIn``, which ``create_app`` sets
as ``app.state.sso_sessions`` and which builds the portal if nobody opened it yet: a portal
session holding the ``Identity``); an app without it answers the identity as JSON
(``ShowSignedIn``), with no session. Sign-out ends the session, then sends the browser to the
provider's ``end_session_endpoint`` (RP-initiated logout) when it has one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from modelyard.core.errors import ModelyardError, NotFound
from modelyard.protocols.openai import errors
from modelyard.server.chat_route import state_of
from modelyard.server.http import json_response, request_id
from modelyard.services.sign_in import COOKIE, SIGN_IN_TTL_S, SignedIn

if TYPE_CHECKING:
    from modelyard.services.sso import Sso

CALLBACK = "/auth/callback"


class SignInSessions(Protocol):
    """What the portal plugs in: a session for a signed-in person, and its end."""

    async def start(self, request: Request, signed_in: SignedIn) -> Response:
        """The answer to a finished sign-in (a session cookie and a redirect, usually)."""
        ...

    async def end(self, request: Request) -> str | None:
        """End the caller's session; the ID token it kept (a hint for the provider), if any."""
        ...


class ShowSignedIn:
    """No portal: the sign-in answers who signed in, as JSON; there is no session to end."""

    async def start(self, request: Request, signed_in: SignedIn) -> Response:
        who = signed_in.identity
        body = {
            "object": "sign_in",
            "user": who.subject,
            "issuer": who.issuer,
            "email": who.email,
            "name": who.name,
            "role": who.role,
            "projects": list(who.projects),
            "memberships": [{"project": p, "role": r} for p, r in who.memberships],
            "return_to": signed_in.return_to,
        }
        return json_response(orjson.dumps(body), 200, {"x-request-id": request_id(request)})

    async def end(self, request: Request) -> str | None:
        return None


def _sso(request: Request) -> Sso:
    sso = state_of(request).sso
    if sso is None:
        raise NotFound("single sign-on is not configured (sso: in the config)", code="no_sso")
    return sso


def _sessions(request: Request) -> SignInSessions:
    found: SignInSessions | None = getattr(request.app.state, "sso_sessions", None)
    return found or ShowSignedIn()


def _callback_url(request: Request, sso: Sso) -> str:
    if sso.config.redirect_url:
        return sso.config.redirect_url
    return f"{request.url.scheme}://{request.url.netloc}{CALLBACK}"


def _error(request: Request, err: ModelyardError) -> Response:
    headers = {"x-request-id": request_id(request), "cache-control": "no-store"}
    return json_response(errors.error_body(err), err.status, headers)


async def login(request: Request) -> Response:
    try:
        sso = _sso(request)
        query = request.query_params
        url, cookie = await sso.begin(
            _callback_url(request, sso), query.get("return_to"), query.get("login_hint")
        )
    except ModelyardError as exc:
        return _error(request, exc)
    answer = RedirectResponse(url, status_code=302, headers={"cache-control": "no-store"})
    answer.set_cookie(
        COOKIE, cookie, max_age=SIGN_IN_TTL_S, path="/auth", httponly=True,
        secure=request.url.scheme == "https", samesite="lax",
    )  # fmt: skip
    return answer


async def callback(request: Request) -> Response:
    try:
        sso = _sso(request)
        params = {k: v[:4096] for k, v in request.query_params.items()}
        signed_in = await sso.finish(
            params, request.cookies.get(COOKIE), _callback_url(request, sso)
        )
        answer = await _sessions(request).start(request, signed_in)
    except ModelyardError as exc:
        answer = _error(request, exc)
    answer.delete_cookie(COOKIE, path="/auth")  # one sign-in per cookie, whatever came of it
    return answer


async def logout(request: Request) -> Response:
    try:
        sso = _sso(request)
        hint = await _sessions(request).end(request)
        url = await sso.logout_url(hint)
    except ModelyardError as exc:
        return _error(request, exc)
    if url is None:
        body = orjson.dumps({"object": "sign_out", "signed_out": True})
        return json_response(body, 200, {"x-request-id": request_id(request)})
    return RedirectResponse(url, status_code=302, headers={"cache-control": "no-store"})


ROUTES = (
    Route("/auth/login", login, methods=["GET"]),
    Route(CALLBACK, callback, methods=["GET"]),
    Route("/auth/logout", logout, methods=["GET", "POST"]),
)
