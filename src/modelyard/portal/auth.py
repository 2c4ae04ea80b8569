"""Sign in with an API key or through single sign-on, switch project, sign out.

The sign-in form is protected against login CSRF by a double-submit token (a random cookie of
its own, echoed in the form); the session cookie is ``HttpOnly``, scoped to ``/portal``,
``Secure`` whenever the request came over HTTPS, and ``SameSite=Strict`` for a key's session.
A single sign-on session's cookie is ``SameSite=Lax``: it is set at the end of a redirect chain
that began at the identity provider, where a browser would not send a strict cookie to the
first page. Single sign-on itself is ``/auth/login`` → the provider → ``/auth/callback``
(``server/auth_routes.py``), which hands the signed-in person to ``PortalSignIn`` here.
Signing out of a single sign-on session also ends the provider's session (RP-initiated
logout, with the ID token as hint) when the provider offers it.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Literal
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from modelyard.core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelyardError,
    PermissionDenied,
)
from modelyard.portal.session import COOKIE, Origin, user_of_identity, user_of_key
from modelyard.portal.web import PREFIX, Ctx, _form, error_page, page, portal_of
from modelyard.services.acting import key_acting_in, must_exist, requested_project
from modelyard.services.root import Root
from modelyard.services.sign_in import SignedIn
from modelyard.store import StoreError
from modelyard.tenancy.keys import UnknownKey

LOGIN_COOKIE = "modelyard_portal_login"
MAX_KEY_CHARS = 512


async def login_form(request: Request, message: str | None = None, status: int = 200) -> Response:
    portal = portal_of(request)
    root: Root = request.app.state.modelyard
    token = secrets.token_urlsafe(24)
    sso = root.sso
    context: dict[str, Any] = {
        "sso_name": sso.config.display_name if sso is not None else None,
        "sso_url": f"/auth/login?return_to={quote(PREFIX + '/catalog')}",
        "user": None,
        "csrf": token,
        "nav": [],
        "path": request.url.path,
        "prefix": PREFIX,
        "message": message,
    }
    answer = portal.html("login.html", context, status)
    _cookie(answer, request, LOGIN_COOKIE, token)
    return answer


async def login(request: Request) -> Response:
    portal = portal_of(request)
    root: Root = request.app.state.modelyard
    form = await _form(request)
    token, cookie = form.get("csrf"), request.cookies.get(LOGIN_COOKIE)
    if not (isinstance(token, str) and cookie and hmac.compare_digest(token, cookie)):
        return error_page(portal, PermissionDenied("missing or wrong CSRF token"), None)
    key = form.get("api_key")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
        return await login_form(request, "api_key: paste an API key (my-…)", 400)
    key = key.strip()
    address = request.client.host if request.client else "unknown"
    wait = portal.sign_ins.retry_after(address)
    if wait is not None:
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        answer = await login_form(
            request, f"too many failed sign-ins: try again in {minutes} min", 429
        )
        answer.headers["retry-after"] = str(max(1, int(wait.total_seconds())))
        return answer
    try:
        try:
            principal = root.keys.authenticate(key, may_look_up=True)
        except UnknownKey:
            await root.keys_changed()  # a key made a moment ago, on another server
            principal = root.keys.authenticate(key)
    except AuthenticationFailed as exc:
        portal.sign_ins.failed(address)
        return await login_form(request, exc.message, 401)
    if principal.anonymous:
        return await login_form(request, "this server has no keys: the portal needs one", 401)
    try:
        session = await portal.sessions(root).open(user_of_key(principal), Origin.of_key(key))
    except StoreError as exc:
        return error_page(portal, exc, None, 503)
    answer = RedirectResponse(f"{PREFIX}/catalog", 303)
    _cookie(answer, request, COOKIE, session.id)
    answer.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return answer


@page
async def logout(ctx: Ctx) -> Response:
    """End the session (in the store: everywhere); a single sign-on session also ends the
    provider's, when it offers an end-session endpoint. That is a page that moves on by
    itself rather than a redirect: the portal's CSP allows forms to post only to itself, and a
    browser applies that to where the form's answer redirects."""
    await ctx.sessions.close(ctx.session.id)
    answer: Response = RedirectResponse(f"{PREFIX}/login", 303)
    sso = ctx.root.sso
    if ctx.session.identity is not None and sso is not None:
        try:
            url = await sso.logout_url(ctx.session.id_token)
        except ModelyardError:
            url = None  # the provider is down: our session is over; theirs ends on its own
        if url is not None:
            context: dict[str, Any] = {
                "user": None, "csrf": "", "nav": [], "path": "", "prefix": PREFIX,
                "provider": sso.config.display_name, "url": url,
            }  # fmt: skip
            answer = ctx.portal.html("signed_out.html", context)
    answer.delete_cookie(COOKIE, path=PREFIX)
    return answer


@page
async def switch_project(ctx: Ctx) -> Response:
    """Act in another of one's projects (a form on every page, for people with several)."""
    project = requested_project(ctx.field("project") or None)
    if project is None:
        raise InvalidRequest("project: choose one of your projects", param="project")
    session = ctx.session
    if session.identity is not None:
        user = user_of_identity(session.identity, project)
    else:
        user = user_of_key(key_acting_in(session.user.principal, project))
    await must_exist(ctx.root.admin, user.principal, project)
    await ctx.sessions.act_in(session, user)
    back = ctx.field("back")
    if not back.startswith(PREFIX + "/") or back.startswith("//") or "\\" in back:
        back = f"{PREFIX}/catalog"
    return RedirectResponse(back[:2048], 303)


class PortalSignIn:
    """The portal's ``SignInSessions`` (``server/auth_routes.py``): a finished single sign-on
    becomes a portal session acting in the person's first project at their highest role."""

    async def start(self, request: Request, signed_in: SignedIn) -> Response:
        portal = portal_of(request)
        root: Root = request.app.state.modelyard
        identity = signed_in.identity
        origin = Origin(identity=identity, id_token=signed_in.id_token)
        session = await portal.sessions(root).open(user_of_identity(identity), origin)
        back = signed_in.return_to
        target = back if back.startswith(PREFIX + "/") else f"{PREFIX}/catalog"
        answer = RedirectResponse(target, 303, headers={"cache-control": "no-store"})
        _cookie(answer, request, COOKIE, session.id, samesite="lax")
        return answer

    async def end(self, request: Request) -> str | None:
        """``/auth/logout``: ends the portal session if the browser sent its cookie (scoped to
        ``/portal``, it usually does not: the portal's own Sign out does both)."""
        portal = portal_of(request)
        root: Root = request.app.state.modelyard
        closed = await portal.sessions(root).close(request.cookies.get(COOKIE))
        return closed.id_token if closed is not None else None


def _cookie(
    answer: Response,
    request: Request,
    name: str,
    value: str,
    samesite: Literal["strict", "lax"] = "strict",
) -> None:
    answer.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite=samesite,
        secure=request.url.scheme == "https",
    )
