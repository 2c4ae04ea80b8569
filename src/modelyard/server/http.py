"""Small HTTP helpers for the routes: bounded body reading, request ids, JSON responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelyard.core.errors import InvalidRequest, PayloadTooLarge
from modelyard.server.middleware import EXCHANGE, Exchange, client_request_id, request_id_of


def exchange_of(request: Request) -> Exchange:
    """The request as the middleware opened it (its id, and where the route notes the model)."""
    found: Exchange | None = request.scope.get(EXCHANGE)
    if found is None:  # an app mounted without ``Front`` (never by ``create_app``)
        scope = request.scope
        found = scope[EXCHANGE] = Exchange(request_id_of(scope), client_request_id(scope))
    return found


def request_id(request: Request) -> str:
    """The request's id (ours, fresh: see ``server.middleware``)."""
    return exchange_of(request).rid


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object", param="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", param="body") from exc


class JSONBody(Response):
    """An encoded JSON body and our own headers, put together the short way.

    Every answer of the API is one of these. Starlette's general ``init_headers`` lowercases
    each name, encodes names and values through the codec registry by name and searches the
    list for content-length and content-type: about 2.5k instructions per header (callgrind),
    a tenth of the work metering adds to a request, whose limits send 7 headers. Here: the
    names must already be lowercase, as ASGI wants and as every name this server sends is,
    and must not be content-length or content-type; values are encoded as Starlette encodes
    them (latin-1, the same bytes as the default codec's fast path for ASCII).
    """

    media_type = "application/json"

    def __init__(
        self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        raw = (
            [
                (name.encode(), value.encode() if value.isascii() else value.encode("latin-1"))
                for name, value in headers.items()
            ]
            if headers
            else []
        )
        if not (status < 200 or status in (204, 304)):
            raw.append((b"content-length", str(len(body)).encode()))
        raw.append((b"content-type", b"application/json"))
        self.raw_headers = raw


def json_response(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONBody(body, status, headers)
