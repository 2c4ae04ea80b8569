"""The portal at ``/portal``, built at its first use: most gateways never serve a portal page,
and the portal (its pages, Jinja2, its compiled templates) costs a worker about 2.4 MB.

``LazyPortal`` is the ASGI app mounted at ``/portal``. Its first request imports
``modelyard.portal``, builds the ``Portal`` (sessions, templates) and the portal's router, and
compiles every template: importing and reading templates is file I/O, so it runs in a thread,
off the event loop, under a lock so that concurrent first requests build once and all wait for
it. Then it sets ``app.state.portal`` (the portal's pages read it there) and hands every
request to the portal's router.

``LazySignIn`` is the app's ``SignInSessions`` (``server/auth_routes.py``): a single sign-on
finished before anyone opened the portal builds it the same way, then hands over to the
portal's ``PortalSignIn``, so the session it opens is the portal's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.config.portal import PortalConfig
from modelyard.services.sign_in import SignedIn

if TYPE_CHECKING:
    from modelyard.portal.web import Portal
    from modelyard.server.auth_routes import SignInSessions

PREFIX = "/portal"  # portal.web.PREFIX, which this module must not import to know it


@dataclass(frozen=True, slots=True)
class BuiltPortal:
    """The portal once built: its state, its router and its single sign-on sessions."""

    portal: Portal
    app: ASGIApp
    sign_in: SignInSessions


def build_portal(config_path: Path | None, config: PortalConfig) -> BuiltPortal:
    """Import and build the portal, its templates compiled and the catalog page's listing
    built (blocking: call it off the loop)."""
    from modelyard.portal.auth import PortalSignIn
    from modelyard.portal.catalog_pages import load_listing
    from modelyard.portal.routes import router
    from modelyard.portal.web import Portal

    portal = Portal.build(config_path, config)
    portal.load_templates()
    load_listing()
    return BuiltPortal(portal, router(), PortalSignIn())


class LazyPortal:
    """The ASGI app at ``/portal``: builds the portal at its first request, then serves it."""

    def __init__(self, config_path: Path | None, config: PortalConfig) -> None:
        self._config_path = config_path
        self._config = config
        self._built: BuiltPortal | None = None
        self._building = asyncio.Lock()

    async def built(self, state: State) -> BuiltPortal:
        """The portal, built once by whichever caller comes first (the others wait for it);
        ``state``: the app's, where the portal's pages find it (``app.state.portal``)."""
        if self._built is None:
            async with self._building:
                if self._built is None:
                    built = await asyncio.to_thread(build_portal, self._config_path, self._config)
                    state.portal = built.portal
                    self._built = built
        return self._built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        built = self._built or await self.built(scope["app"].state)
        await built.app(scope, receive, send)


class LazySignIn:
    """The app's ``SignInSessions``: the portal's, which it builds if nobody has yet."""

    def __init__(self, portal: LazyPortal) -> None:
        self._portal = portal

    async def start(self, request: Request, signed_in: SignedIn) -> Response:
        """A finished single sign-on: a portal session, its cookie and a redirect."""
        built = await self._portal.built(request.app.state)
        return await built.sign_in.start(request, signed_in)

    async def end(self, request: Request) -> str | None:
        """``/auth/logout``: the portal session ended, its ID token returned."""
        built = await self._portal.built(request.app.state)
        return await built.sign_in.end(request)
