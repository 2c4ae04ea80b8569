"""The ASGI app, built by ``create_app(settings)``; everything hangs off it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from modelyard.config import Settings, data_dir, load_settings
from modelyard.core.errors import InternalError, ModelyardError, NotFound
from modelyard.server.access_log import AccessLog
from modelyard.server.admin_mount import LazyAdmin, admin_routes
from modelyard.server.anthropic_routes import ROUTES as ANTHROPIC_ROUTES
from modelyard.server.auth_routes import ROUTES as AUTH_ROUTES
from modelyard.server.gemini_routes import ROUTES as GEMINI_ROUTES
from modelyard.server.http import json_response, request_id
from modelyard.server.lifeline import SERVE_PID_ENV as SERVE_PID_ENV  # noqa: PLC0414 (for cli.serve)
from modelyard.server.lifeline import tie_to_serve
from modelyard.server.metrics_route import ROUTES as METRICS_ROUTES
from modelyard.server.middleware import Front, error_in_dialect
from modelyard.server.openai_routes import ROUTES as OPENAI_ROUTES
from modelyard.server.portal_mount import PREFIX as PORTAL_PREFIX
from modelyard.server.portal_mount import LazyPortal, LazySignIn
from modelyard.server.protocol import (
    GracefulHttpToolsProtocol as GracefulHttpToolsProtocol,  # noqa: PLC0414
)
from modelyard.server.response_state_routes import ROUTES as STATE_ROUTES
from modelyard.server.responses_routes import ROUTES as RESPONSES_ROUTES
from modelyard.services.gateway import Gateway
from modelyard.services.observing import (
    LOG_FORMAT_ENV,
    LOG_LEVEL_ENV,
    configure_logs,
    observation_for,
    observes,
)
from modelyard.services.root import Root
from modelyard.store import Store, database_url, open_store, redact

if TYPE_CHECKING:  # metrics and traces: imported when the config turns them on
    from modelyard.services.observed import Metrics, Observation

log = logging.getLogger("modelyard.server")
LOCAL_URL_ENV = "MODELYARD_LOCAL_URL"
# The served APIs, each dialect's routes.
_DIALECT_ROUTES = (
    *OPENAI_ROUTES,
    *RESPONSES_ROUTES,
    *STATE_ROUTES,
    *ANTHROPIC_ROUTES,
    *GEMINI_ROUTES,
)


def create_app(
    settings: Settings,
    local_base_url: str | None = None,
    config_path: Path | None = None,
    store_url: str | None = None,
    observation: Observation | None = None,
) -> Starlette:
    """``store_url``: the store (versions, keys, the ledger); None (embedding, tests): none.
    ``observation``: metrics and traces instead of the config's (tests). Root opens at start."""
    gateway = Gateway(settings, local_base_url)  # a bad config fails here, not at start-up
    holder: dict[str, Root] = {}
    portal = LazyPortal(config_path, settings.portal)
    # An observation lists every route's template now; else the admin routes wait for a request.
    admin = admin_routes() if observation is not None or observes(settings.observability) else []
    routes = _routes(portal, admin or [LazyAdmin()])
    if observation is None:
        templates = [r.path for r in routes if isinstance(r, Route)]
        observation = observation_for(settings.observability, templates)

    metrics = observation.metrics if observation is not None else None
    access = AccessLog()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        store = await _open_store(store_url) if store_url else None
        root = await Root.open(gateway, store, observation=observation, config_path=config_path)
        holder["root"] = app.state.modelyard = root
        # Everything built at start-up (the catalog's price data above all, when a provider
        # has list prices) lives as long as the process: keep it out of the cyclic collector's
        # way, so collections triggered by request garbage stay small.
        gc.collect()
        gc.freeze()
        try:
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.create_task(root.reload(config_path))
            )
            on_hup = True
        except (ValueError, NotImplementedError, RuntimeError):
            on_hup = False  # served off the main thread (tests, embedding): no signal reload
        try:
            yield
        finally:
            if on_hup:
                loop.remove_signal_handler(signal.SIGHUP)
            await root.aclose()
            access.flush()

    app = _Served(
        _front(routes, lambda: holder["root"], metrics, access),
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _unhandled},
    )
    app.state.sso_sessions = LazySignIn(portal)  # a finished single sign-on opens a portal session
    return app


class _Served(Starlette):
    """Starlette with ``Front`` outermost, outside Starlette's own error middleware, which
    would otherwise wrap every response message of every request in a closure of its own:
    ``Front`` answers whatever a route raises itself, in the path's dialect."""

    def __init__(self, front: Middleware, **kwargs: Any) -> None:
        self._front = front
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        cls, args, kwargs = self._front
        front: ASGIApp = cls(super().build_middleware_stack(), *args, **kwargs)
        return front


def _routes(portal: LazyPortal, admin: list[BaseRoute]) -> list[BaseRoute]:
    """``admin``: the admin and evaluation routes, or the ``LazyAdmin`` that imports them."""
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *_DIALECT_ROUTES,
        *admin,
        *AUTH_ROUTES,
        *METRICS_ROUTES,
        Mount(PORTAL_PREFIX, app=portal),  # the web console (modelyard.portal), built at first use
    ]


def _front(
    routes: list[BaseRoute], root_of: Callable[[], Root], metrics: Metrics | None, access: AccessLog
) -> Middleware:
    """The one middleware (``server.middleware.Front``)."""
    return Middleware(
        Front, root_of=root_of, metrics=metrics, access=access, direct=_direct(routes)
    )


def _direct(routes: list[BaseRoute]) -> dict[str, Route]:
    """The served APIs' routes ``Front`` calls straight: POST only, no path parameters."""
    served = {id(r) for r in _DIALECT_ROUTES}
    return {
        r.path: r
        for r in routes
        if id(r) in served
        and isinstance(r, Route)
        and r.methods == {"POST"}
        and not r.param_convertors
    }


def app_from_env() -> Starlette:
    """Factory for uvicorn workers: ``serve`` passes the config path and local URL by env."""
    tie_to_serve()  # a worker stops when serve dies, however it died (server/lifeline.py)
    level = os.environ.get(LOG_LEVEL_ENV)
    if level and not logging.getLogger().handlers:  # a worker process serve spawned
        configure_logs(level, os.environ.get(LOG_FORMAT_ENV) or "text")
    config = os.environ.get("MODELYARD_CONFIG")
    path = Path(config) if config else None
    settings = load_settings(path)
    url = database_url(settings.store.url.reveal() if settings.store.url else None, data_dir())
    return create_app(settings, os.environ.get(LOCAL_URL_ENV) or None, path, url)


async def _open_store(url: str) -> Store:
    store = await open_store(url)
    log.info("deployment versions in %s", redact(url))
    return store


async def healthz(request: Request) -> Response:
    return json_response(b'{"status":"ok"}')


async def readyz(request: Request) -> Response:
    """Whether this replica can serve, and the state of the store, Redis and the local model
    (``services/readiness.py``)."""
    root: Root = request.app.state.modelyard
    states = await root.states()
    return json_response(states.body(), 200 if states.ready else 503)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (and any HTTPException), in the path's dialect."""
    assert isinstance(exc, HTTPException)
    rid = request_id(request)
    where = f"{_clip(request.method, 16)} {_clip(request.url.path)}"
    extra: dict[str, str] = {}
    if exc.status_code == 404:
        err: ModelyardError = NotFound(f"no route {where}")
    elif exc.status_code == 405:
        err = NotFound(f"method not allowed: {where}")
        allowed = (exc.headers or {}).get("Allow")  # a 405 must say what is (RFC 9110 15.5.6)
        if allowed:
            extra["allow"] = allowed
    else:
        err = InternalError(_clip(str(exc.detail)))
    body, headers = error_in_dialect(err, request.url.path, rid)
    return json_response(body, exc.status_code, {**headers, **extra})


async def _unhandled(request: Request, exc: Exception) -> Response:
    """Reached only by an exception ``Front`` did not catch (an app built without it)."""
    rid = request_id(request)
    log.error("request %s failed: %s", rid, type(exc).__name__)
    err = InternalError(f"internal error (request id {rid})")
    body, headers = error_in_dialect(err, request.url.path, rid)
    return json_response(body, 500, headers)


def _clip(text: str, limit: int = 200) -> str:
    """A client's text bounded before it is echoed (a 15 MB path must not come back)."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"
