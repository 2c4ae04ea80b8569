"""Sign in with an API key, sign out.

The sign-in form is protected against login CSRF by a double-submit token (a random cookie of
its own, echoed in the form); the session cookie is ``HttpOnly``, ``SameSite=Strict``, scoped
to ``/portal`` and ``Secure`` whenever the request came over HTTPS.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from modelyard.core.errors import AuthenticationFailed, PermissionDenied
from modelyard.portal.session import COOKIE, user_of_key
from modelyard.portal.web import PREFIX, Ctx, _form, error_page, page, portal_of
from modelyard.services.root import Root
from modelyard.tenancy.keys import UnknownKey

LOGIN_COOKIE = "modelyard_portal_login"
MAX_KEY_CHARS = 512


async def login_form(request: Request, message: str | None = None, status: int = 200) -> Response:
    portal = portal_of(request)
    token = secrets.token_urlsafe(24)
    context: dict[str, Any] = {
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
    session = portal.sessions.open(user_of_key(principal), api_key=key)
    answer = RedirectResponse(f"{PREFIX}/catalog", 303)
    _cookie(answer, request, COOKIE, session.id)
    answer.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return answer


@page
async def logout(ctx: Ctx) -> Response:
    ctx.portal.sessions.close(ctx.session.id)
    answer = RedirectResponse(f"{PREFIX}/login", 303)
    answer.delete_cookie(COOKIE, path=PREFIX)
    return answer


def _cookie(answer: Response, request: Request, name: str, value: str) -> None:
    answer.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
