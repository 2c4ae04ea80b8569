"""The ASGI app, built by ``create_app(settings)``; everything hangs off it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.config import ConfigError, Settings, data_dir, load_settings
from modelyard.core.errors import InternalError, ModelyardError, NotFound
from modelyard.core.timeouts import CallTimeouts
from modelyard.protocols.openai import errors
from modelyard.server.admin_evals import ROUTES as EVAL_ROUTES
from modelyard.server.admin_routes import ROUTES as ADMIN_ROUTES
from modelyard.server.anthropic_routes import ROUTES as ANTHROPIC_ROUTES
from modelyard.server.backing import Backing
from modelyard.server.http import json_response, request_id
from modelyard.server.openai_routes import ROUTES as OPENAI_ROUTES
from modelyard.server.state import AppState
from modelyard.services.build import with_overrides
from modelyard.services.deployments import sync_versions
from modelyard.services.gateway import Gateway
from modelyard.store import Store, StoreError, database_url, open_store, redact

log = logging.getLogger("modelyard.server")
LOCAL_URL_ENV = "MODELYARD_LOCAL_URL"
_HEALTH_TIMEOUTS = CallTimeouts(connect=1.0, first_token=2.0, total=3.0)


def create_app(
    settings: Settings,
    local_base_url: str | None = None,
    config_path: Path | None = None,
    store_url: str | None = None,
) -> Starlette:
    """``store_url``: the deployment-version store; None (embedding, tests) keeps no versions."""
    state = AppState(Gateway(settings, local_base_url))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        # Deployment versions: recorded and applied before the first request; a store that
        # cannot open fails startup rather than silently serving a rolled-back deployment wrong.
        store = await _open_versions(state, store_url) if store_url else None
        backing = Backing(state, store)
        await backing.start()
        # Everything built at start-up (the catalog's price data above all) lives as long as
        # the process: keep it out of the cyclic collector's way, so collections triggered by
        # request garbage stay small.
        gc.collect()
        gc.freeze()

        async def on_reload() -> None:
            if await reload(state, config_path, store):
                await backing.keys_changed()

        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(on_reload()))
            on_hup = True
        except (ValueError, NotImplementedError, RuntimeError):
            on_hup = False  # served off the main thread (tests, embedding): no signal reload
        try:
            yield
        finally:
            if on_hup:
                loop.remove_signal_handler(signal.SIGHUP)
            await backing.aclose()
            await state.gateway.aclose()
            if store is not None:
                await store.aclose()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *OPENAI_ROUTES,
        *ANTHROPIC_ROUTES,
        *ADMIN_ROUTES,
        *EVAL_ROUTES,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _unhandled},
    )
    app.state.modelyard = state
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn workers: ``serve`` passes the config path and local URL by env."""
    config = os.environ.get("MODELYARD_CONFIG")
    path = Path(config) if config else None
    settings = load_settings(path)
    url = database_url(settings.store.url.reveal() if settings.store.url else None, data_dir())
    return create_app(settings, os.environ.get(LOCAL_URL_ENV) or None, path, url)


async def _open_versions(state: AppState, url: str) -> Store:
    """Open (and migrate) the store, record the config's versions, serve any rollbacks."""
    store = await open_store(url)
    log.info("deployment versions in %s", redact(url))
    try:
        settings = state.gateway.settings
        overrides = await sync_versions(store, settings)
        if overrides:
            served = with_overrides(settings, overrides)
            old = state.gateway
            state.install(Gateway(served, old.local_base_url, previous=old))
    except ConfigError as exc:
        log.error("rolled-back deployments not applied, serving the config: %s", exc)
    except BaseException:
        await store.aclose()
        raise
    return store


async def reload(state: AppState, config_path: Path | None, store: Store | None = None) -> bool:
    """Re-read the config and swap it in whole; a config with errors, or a version store that
    fails, leaves the running one."""
    old = state.gateway
    try:
        settings = await asyncio.to_thread(load_settings, config_path)
        if store is not None:
            settings = with_overrides(settings, await sync_versions(store, settings))
        new = Gateway(settings, old.local_base_url, previous=old)
    except ConfigError as exc:
        log.error("reload refused, the running config stays: %s", exc)
        return False
    except StoreError as exc:
        log.error("reload refused, the running config stays: version store: %s", exc)
        return False
    state.install(new)
    log.info("reloaded %s: deployments %s", config_path, ", ".join(sorted(new.table.names)))
    return True


async def healthz(request: Request) -> Response:
    return json_response(b'{"status":"ok"}')


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.modelyard
    base = state.gateway.local_base_url
    if state.gateway.settings.local.enabled and not await _local_ready(state, base):
        return json_response(b'{"status":"starting","local":"not ready"}', 503)
    return json_response(b'{"status":"ready"}')


async def _local_ready(state: AppState, base: str | None) -> bool:
    if base is None:
        return False
    now = time.monotonic()
    if state.local_ready and now - state.ready_checked_at < 1.0:
        return True
    health = base.removesuffix("/v1") + "/health"
    try:
        resp = await state.gateway.transport.get(health, {}, _HEALTH_TIMEOUTS, "local runtime")
    except ModelyardError:
        state.local_ready = False
        return False
    state.local_ready = resp.status == 200
    state.ready_checked_at = now
    return state.local_ready


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    rid = request_id(request)
    if exc.status_code == 404:
        err: ModelyardError = NotFound(f"no route {request.method} {request.url.path}")
    elif exc.status_code == 405:
        err = NotFound(f"method {request.method} is not allowed on {request.url.path}")
        headers = {"x-request-id": rid}
        allowed = (exc.headers or {}).get("Allow")  # a 405 must say what is (RFC 9110 15.5.6)
        if allowed:
            headers["allow"] = allowed
        return json_response(errors.error_body(err), 405, headers)
    else:
        err = InternalError(str(exc.detail))
    return json_response(errors.error_body(err), exc.status_code, {"x-request-id": rid})


async def _unhandled(request: Request, exc: Exception) -> Response:
    rid = request_id(request)
    log.exception("request %s failed", rid, exc_info=exc)
    err = InternalError(f"internal error (request id {rid})")
    return json_response(errors.error_body(err), 500, {"x-request-id": rid})
