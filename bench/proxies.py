"""The ceilings: two reference proxies on Modelyard's own server and client stack.

``python -m bench.proxies --kind featureless|parsing --upstream URL --port P [--workers N]
[--server S] [--client C]``
serves ``POST /v1/chat/completions`` with uvicorn (uvloop, httptools: what ``modelyard serve``
runs) and Starlette, and calls the upstream with one pooled aiohttp session (as Modelyard's
``Transport`` does). ``GET /readyz`` answers 200. ``--server`` and ``--client`` put the same
proxy on another stack (``bench/servers.py``, ``bench/clients.py``; compared by
``bench/stacks.py``).

- ``featureless``: forwards the request body as is and returns the upstream's answer as is; a
  stream is passed through chunk by chunk. It picks the upstream route (``/v1`` or
  ``/stream/v1``, as the benchmark's two deployments do) by looking for ``"stream":true`` in
  the bytes: the least a proxy can do and still tell the two apart.
- ``parsing``: the least a metering gateway must do: decodes the request with orjson, reads
  ``stream``, re-encodes it and forwards it; decodes the answer, reads its ``usage`` and
  re-encodes it; for a stream, each SSE event's JSON is decoded and re-encoded (``[DONE]``
  passes through).

Modelyard's configurations are reported as ratios of the parsing proxy (``bench/ceilings.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bench.clients import AIOHTTP, CLIENTS, client_named
from bench.servers import UVICORN, add_arguments, serve

FEATURELESS, PARSING = "featureless", "parsing"
KINDS = (FEATURELESS, PARSING)
KIND_ENV, UPSTREAM_ENV = "BENCH_PROXY_KIND", "BENCH_PROXY_UPSTREAM"
CLIENT_ENV = "BENCH_PROXY_CLIENT"
_STREAM_MARK = b'"stream":true'


class _Upstream:
    """The upstream's two routes and the process's one pooled client."""

    def __init__(self, origin: str, client: str) -> None:
        self.plain = f"{origin}/v1/chat/completions"
        self.stream = f"{origin}/stream/v1/chat/completions"
        self.client = client_named(client)


async def _reencoded(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Each ``data:`` event's JSON decoded and re-encoded; other lines pass through."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *events, pending = pending.split(b"\n\n")
        out = []
        for event in events:
            payload = event[6:] if event.startswith(b"data: ") else b""
            if payload and payload != b"[DONE]":
                frame = orjson.loads(payload)
                frame.get("usage")
                out.append(b"data: " + orjson.dumps(frame) + b"\n\n")
            else:
                out.append(event + b"\n\n")
        if out:
            yield b"".join(out)
    if pending:
        yield pending


def _featureless(upstream: _Upstream) -> Any:
    client = upstream.client

    async def chat(request: Request) -> Response:
        body = await request.body()
        if _STREAM_MARK in body:
            status, ctype, chunks = await client.stream(upstream.stream, body)
            return StreamingResponse(chunks, status, media_type=ctype)
        status, ctype, payload = await client.post(upstream.plain, body)
        return Response(payload, status, media_type=ctype)

    return chat


def _parsing(upstream: _Upstream) -> Any:
    client = upstream.client

    async def chat(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        if doc.get("stream") is True:
            status, _, chunks = await client.stream(upstream.stream, orjson.dumps(doc))
            return StreamingResponse(_reencoded(chunks), status, media_type="text/event-stream")
        status, _, payload = await client.post(upstream.plain, orjson.dumps(doc))
        answer = orjson.loads(payload)
        answer.get("usage")
        return Response(orjson.dumps(answer), status, media_type="application/json")

    return chat


async def _ready(_request: Request) -> Response:
    return Response(b"ok")


def create_app(kind: str, origin: str, client: str = AIOHTTP) -> Starlette:
    """The proxy of ``kind`` in front of the upstream at ``origin`` (``http://host:port``),
    calling it with ``client`` (one of ``bench.clients.CLIENTS``)."""
    upstream = _Upstream(origin, client)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await upstream.client.open()
        try:
            yield
        finally:
            await upstream.client.aclose()

    handler = _featureless(upstream) if kind == FEATURELESS else _parsing(upstream)
    routes = [
        Route("/v1/chat/completions", handler, methods=["POST"]),
        Route("/readyz", _ready, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_env() -> Starlette:
    """The server's factory in each worker: kind, upstream and client come from the
    environment."""
    client = os.environ.get(CLIENT_ENV) or AIOHTTP
    return create_app(os.environ[KIND_ENV], os.environ[UPSTREAM_ENV], client)


def argv(
    kind: str,
    origin: str,
    port: int,
    workers: int = 1,
    stack: tuple[str, str] = (UVICORN, AIOHTTP),
) -> list[str]:
    """The command line that serves the proxy of ``kind`` (for ``bench.procs.service``);
    ``stack``: the server and the client (Modelyard's by default)."""
    server, client = stack
    return [
        sys.executable, "-m", "bench.proxies", "--kind", kind, "--upstream", origin,
        "--port", str(port), "--workers", str(workers), "--server", server, "--client", client,
    ]  # fmt: skip


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.proxies", description=__doc__)
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--upstream", required=True, help="http://host:port of the fake")
    parser.add_argument("--client", choices=CLIENTS, default=AIOHTTP)
    add_arguments(parser, UVICORN)
    parsed = parser.parse_args(args)
    os.environ[KIND_ENV], os.environ[UPSTREAM_ENV] = parsed.kind, parsed.upstream.rstrip("/")
    os.environ[CLIENT_ENV] = parsed.client
    serve(parsed.server, "bench.proxies:app_from_env", parsed.port, parsed.workers)


if __name__ == "__main__":
    main()
