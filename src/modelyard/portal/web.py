"""What every portal page shares: templates, the session check, CSRF, errors as HTML.

``page(handler)`` wraps a handler: it finds the session (none: to the sign-in page), re-checks
the key behind it (revoked: signed out), checks the CSRF token on every unsafe method (a form
field ``csrf`` or the ``x-csrf-token`` header HTMX sends; missing or wrong: 403), and renders a
``ModelyardError`` as an HTML page with its status. Role checks are the service layer's; the
templates only leave out what a role may not do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelyard.config.portal import PortalConfig
from modelyard.core.errors import (
    AuthenticationFailed,
    ModelyardError,
    PayloadTooLarge,
    PermissionDenied,
)
from modelyard.portal.comparisons import Comparisons
from modelyard.portal.session import (
    COOKIE,
    MemorySessions,
    Session,
    Sessions,
    SignInAttempts,
    User,
    user_of_key,
)
from modelyard.portal.stored_sessions import StoredSessions
from modelyard.services.root import Root
from modelyard.store import Store, StoreError
from modelyard.tenancy.keys import Principal, UnknownKey

PREFIX = "/portal"
MAX_FORM_BYTES = 64 * 1024
_SAFE = frozenset({"GET", "HEAD"})
_HERE = Path(__file__).resolve().parent
NAV = (  # (path, label, who sees it)
    ("/catalog", "Catalog", frozenset({"operator", "owner", "member"})),
    ("/deployments", "Deployments", frozenset({"operator", "owner", "member"})),
    ("/keys", "Keys and projects", frozenset({"operator", "owner"})),
    ("/usage", "Usage and cost", frozenset({"operator", "owner", "member"})),
    ("/playground", "Playground", frozenset({"operator", "owner", "member"})),
    ("/evals", "Evaluations", frozenset({"operator", "owner", "member"})),
)


def templates() -> jinja2.Environment:
    """Autoescaped HTML templates; a missing variable is an error, not an empty string. The
    templates ship with the code: once compiled (``Portal.load_templates``) they are never
    looked at on disk again (no ``stat`` per page on the event loop)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=jinja2.select_autoescape(("html", "svg"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,  # every template stays compiled (there are a few dozen)
    )


@dataclass(slots=True)
class Portal:
    """The portal's own state, one per app: where its sessions live, templates and the config
    file a deployment change reloads."""

    memory: MemorySessions
    env: jinja2.Environment
    config_path: Path | None
    comparisons: Comparisons
    sign_ins: SignInAttempts
    config: PortalConfig = field(default_factory=PortalConfig)
    clock: Callable[[], datetime] | None = None  # tests inject one
    _stored: StoredSessions | None = None
    _stored_in: Store | None = None

    @classmethod
    def build(
        cls,
        config_path: Path | None,
        config: PortalConfig | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Portal:
        config = config or PortalConfig()
        memory = MemorySessions(
            clock,
            idle=timedelta(seconds=config.session_idle_s),
            max_age=timedelta(seconds=config.session_max_s),
        )
        return cls(
            memory, templates(), config_path, Comparisons(), SignInAttempts(clock), config, clock
        )

    def load_templates(self) -> None:
        """Read and compile every template now (file I/O: ``server.portal_mount`` calls this
        off the event loop), so rendering a page never reads a file."""
        for name in self.env.list_templates():
            self.env.get_template(name)

    def sessions(self, root: Root) -> Sessions:
        """The store's sessions when the server has a store (every worker and replica sees
        them), else this process's."""
        store = root.store
        if store is None:
            return self.memory
        if self._stored is None or self._stored_in is not store:
            self._stored = StoredSessions(
                store,
                self.clock,
                idle=timedelta(seconds=self.config.session_idle_s),
                max_age=timedelta(seconds=self.config.session_max_s),
            )
            self._stored_in = store
        return self._stored

    def html(self, name: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
        body = self.env.get_template(name).render(context)
        return HTMLResponse(body, status, headers=dict(_HEADERS))


# No page may be framed (clickjacking) or cached by a shared cache; scripts only from us.
_HEADERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "cache-control": "no-store",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "content-security-policy": "default-src 'self'; img-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
    }
)


@dataclass(frozen=True, slots=True)
class Ctx:
    """One portal request: the app's state, the session and its form (unsafe methods)."""

    request: Request
    root: Root
    portal: Portal
    session: Session
    form: FormData | None

    @property
    def user(self) -> User:
        return self.session.user

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        if value is None:
            value = self.request.query_params.get(name)
        return value.strip() if isinstance(value, str) else default

    @property
    def sessions(self) -> Sessions:
        return self.portal.sessions(self.root)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        user = self.session.user
        nav = [(PREFIX + path, label) for path, label, roles in NAV if user.role in roles]
        context = {
            "user": user,
            "csrf": self.session.csrf,
            "nav": nav,
            "path": self.request.url.path,
            "prefix": PREFIX,
            **values,
        }
        return self.portal.html(template, context, status)


Handler = Callable[[Ctx], Awaitable[Response]]


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        portal = portal_of(request)
        root: Root = request.app.state.modelyard
        try:
            session = await _live_session(portal, root, request)
        except StoreError as exc:
            return error_page(portal, exc, None, 503)
        if session is None:
            return RedirectResponse(f"{PREFIX}/login", 303)
        try:
            form = None
            if request.method not in _SAFE:
                form = await _form(request)
                presented = request.headers.get("x-csrf-token") or form.get("csrf")
                if not session.csrf_ok(presented if isinstance(presented, str) else None):
                    raise PermissionDenied("missing or wrong CSRF token", code="csrf")
            return await handler(Ctx(request, root, portal, session, form))
        except StoreError as exc:
            return error_page(portal, exc, session, 503)
        except ModelyardError as exc:
            return error_page(portal, exc, session)

    return run


async def _live_session(portal: Portal, root: Root, request: Request) -> Session | None:
    """The request's session; a key session's user re-read from the key ring: a revoked or
    expired key, or one whose role changed, signs its sessions out."""
    sessions = portal.sessions(root)
    session = await sessions.get(request.cookies.get(COOKIE))
    if session is None or session.key_digest is None:
        return session
    try:
        principal = await _key_principal(root, session.user.principal.key_id, session.key_digest)
    except AuthenticationFailed:
        await sessions.close(session.id)
        return None
    if principal != session.user.principal:
        session.user = user_of_key(principal)
    return session


async def _key_principal(root: Root, key_id: str | None, digest: bytes) -> Principal:
    try:
        return root.keys.by_digest(key_id, digest)
    except UnknownKey:
        await root.keys_changed()  # a key made a moment ago, on another server
        return root.keys.by_digest(key_id, digest)


async def _form(request: Request) -> FormData:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
    return await request.form(max_files=0, max_fields=200, max_part_size=MAX_FORM_BYTES)


def error_page(
    portal: Portal, err: ModelyardError, session: Session | None, status: int | None = None
) -> HTMLResponse:
    context: dict[str, Any] = {
        "user": session.user if session else None,
        "csrf": session.csrf if session else "",
        "nav": [],
        "path": "",
        "prefix": PREFIX,
        "status": status or err.status,
        "message": err.message,
    }
    return portal.html("error.html", context, status or err.status)
