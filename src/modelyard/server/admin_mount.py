"""The admin and evaluation APIs' routes (``/admin/...``), imported at their first request.

Their modules (the admin API's pydantic models, ``evals``, ``store.evals``) cost a worker about
3.4 MB, and most gateways are administered rarely or not through this worker at all. ``LazyAdmin``
is one route in the app's table that matches every path under ``/admin/``: its first request
imports the route modules in a thread (file I/O, off the event loop), under a lock so that
concurrent first requests build once; then it hands each request to a ``Router`` of those
routes, which matches, answers 404 and 405, and sets the scope's ``route`` exactly as the app's
own router did when the routes sat in its table (so metrics label admin requests the same).

A config that observes (metrics, traces, JSON logs) lists every route's template when the app
is built, so ``server.app`` then puts the routes themselves in its table (``admin_routes``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, Router
from starlette.types import Receive, Scope, Send

PREFIX = "/admin/"


def admin_routes() -> list[BaseRoute]:
    """The admin API's routes and the evaluation API's (blocking imports: the first call)."""
    from modelyard.server.admin_evals import ROUTES as EVAL_ROUTES
    from modelyard.server.admin_routes import ROUTES as ADMIN_ROUTES

    return [*ADMIN_ROUTES, *EVAL_ROUTES]


class LazyAdmin(BaseRoute):
    """Every path under ``/admin/``: the admin routes, imported at the first such request."""

    def __init__(self) -> None:
        self._router: Router | None = None
        self._building = asyncio.Lock()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # the path as ``Front`` reads it (no server of ours sets a root path)
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # nothing of ours builds admin URLs by name

    async def router(self) -> Router:
        """The admin routes' router, built once by whichever request comes first."""
        if self._router is None:
            async with self._building:
                if self._router is None:
                    self._router = Router(await asyncio.to_thread(admin_routes))
        return self._router

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = self._router or await self.router()
        await router.app(scope, receive, send)
