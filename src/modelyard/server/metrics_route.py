"""``GET /metrics``: the Prometheus exposition, when ``observability.metrics.enabled``.

Who may scrape: a loopback client; anyone when ``observability.metrics.open``; otherwise a
request bearing the scrape token (``observability.metrics.token``) or an operator's key.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.core.errors import AuthenticationFailed, ModelyardError, NotFound, PermissionDenied
from modelyard.protocols.openai import errors
from modelyard.server.chat_route import authenticate, state_of
from modelyard.server.http import json_response, request_id


async def metrics_endpoint(request: Request) -> Response:
    root = state_of(request)
    observed = root.observation.metrics if root.observation is not None else None
    rid = request_id(request)
    try:
        if observed is None:
            raise NotFound("metrics are off: set observability.metrics.enabled in the config")
        await _allowed(request)
    except ModelyardError as err:
        return json_response(errors.error_body(err), err.status, {"x-request-id": rid})
    root.refresh_gauges()
    observed.flush()  # on the loop: the tallies are the loop's
    if observed.multiprocess:  # reads every worker's files: off the event loop
        body, content_type = await asyncio.to_thread(observed.exposition)
    else:
        body, content_type = observed.exposition()
    return Response(body, 200, {"x-request-id": rid}, media_type=content_type)


async def _allowed(request: Request) -> None:
    root = state_of(request)
    settings = root.current.settings.observability.metrics
    client = request.client.host if request.client is not None else ""
    if settings.open or _loopback(client):
        return
    headers = request.headers
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    presented = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    token = settings.token
    if (
        token is not None
        and presented is not None
        and hmac.compare_digest(presented.encode(), token.reveal().encode())
    ):
        return
    if presented is None:
        raise AuthenticationFailed(
            "/metrics from outside loopback needs the scrape token or an operator key "
            "(Authorization: Bearer ...)",
            code="missing_api_key",
        )
    principal = await authenticate(root, request)
    if principal.role != "operator" or principal.anonymous:
        raise PermissionDenied("/metrics needs the scrape token or an operator key")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


ROUTES = (Route("/metrics", metrics_endpoint, methods=["GET"]),)
