"""The ceilings: two reference proxies on Modelyard's own server and client stack.

``python -m bench.proxies --kind featureless|parsing --upstream URL --port P [--workers N]``
serves ``POST /v1/chat/completions`` with uvicorn (uvloop, httptools: what ``modelyard serve``
runs) and Starlette, and calls the upstream with one pooled aiohttp session (as Modelyard's
``Transport`` does). ``GET /readyz`` answers 200.

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

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

FEATURELESS, PARSING = "featureless", "parsing"
KINDS = (FEATURELESS, PARSING)
KIND_ENV, UPSTREAM_ENV = "BENCH_PROXY_KIND", "BENCH_PROXY_UPSTREAM"
_STREAM_MARK = b'"stream":true'
_HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench-key"}


class _Upstream:
    """One pooled aiohttp session for the process, opened and closed by the app's lifespan."""

    def __init__(self, origin: str) -> None:
        self.plain = f"{origin}/v1/chat/completions"
        self.stream = f"{origin}/stream/v1/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    def client(self) -> aiohttp.ClientSession:
        assert self.session is not None, "used outside the app's lifespan"
        return self.session

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=30.0)
        self.session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


async def _passthrough(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    finally:
        response.release()


async def _reencoded(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Each ``data:`` event's JSON decoded and re-encoded; other lines pass through."""
    pending = b""
    try:
        async for chunk in response.content.iter_any():
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
    finally:
        response.release()


def _featureless(upstream: _Upstream) -> Any:
    async def chat(request: Request) -> Response:
        body = await request.body()
        stream = _STREAM_MARK in body
        url = upstream.stream if stream else upstream.plain
        response = await upstream.client().post(url, data=body, headers=_HEADERS)
        ctype = response.headers.get("Content-Type", "application/json")
        if stream:
            return StreamingResponse(_passthrough(response), response.status, media_type=ctype)
        async with response:
            payload = await response.read()
        return Response(payload, response.status, media_type=ctype)

    return chat


def _parsing(upstream: _Upstream) -> Any:
    async def chat(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        stream = doc.get("stream") is True
        url = upstream.stream if stream else upstream.plain
        response = await upstream.client().post(url, data=orjson.dumps(doc), headers=_HEADERS)
        if stream:
            return StreamingResponse(
                _reencoded(response), response.status, media_type="text/event-stream"
            )
        async with response:
            answer = orjson.loads(await response.read())
        answer.get("usage")
        return Response(orjson.dumps(answer), response.status, media_type="application/json")

    return chat


async def _ready(_request: Request) -> Response:
    return Response(b"ok")


def create_app(kind: str, origin: str) -> Starlette:
    """The proxy of ``kind`` in front of the upstream at ``origin`` (``http://host:port``)."""
    upstream = _Upstream(origin)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await upstream.open()
        try:
            yield
        finally:
            await upstream.aclose()

    handler = _featureless(upstream) if kind == FEATURELESS else _parsing(upstream)
    routes = [
        Route("/v1/chat/completions", handler, methods=["POST"]),
        Route("/readyz", _ready, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def app_from_env() -> Starlette:
    """uvicorn's factory in each worker: the kind and upstream come from the environment."""
    return create_app(os.environ[KIND_ENV], os.environ[UPSTREAM_ENV])


def argv(kind: str, origin: str, port: int, workers: int = 1) -> list[str]:
    """The command line that serves the proxy of ``kind`` (for ``bench.procs.service``)."""
    return [
        sys.executable, "-m", "bench.proxies", "--kind", kind, "--upstream", origin,
        "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.proxies", description=__doc__)
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--upstream", required=True, help="http://host:port of the fake")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parsed = parser.parse_args(args)
    os.environ[KIND_ENV], os.environ[UPSTREAM_ENV] = parsed.kind, parsed.upstream.rstrip("/")
    uvicorn.run(
        "bench.proxies:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=parsed.port,
        workers=parsed.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
