"""The HTTP clients the reference proxies of ``bench/proxies.py`` can call their upstream with.

Each is one pooled client for the process, opened and closed by the app's lifespan, with the
same two calls: ``post`` (the whole answer) and ``stream`` (the answer's chunks as they come;
the connection goes back to the pool when the iterator ends). ``aiohttp`` is what Modelyard's
``Transport`` uses; the others are measured against it by ``bench/stacks.py``:

- ``httpx``: ``httpx.AsyncClient`` (0.28), pooled;
- ``httpx2``: its successor, already a Modelyard dependency (the MCP client);
- ``pyreqwest``: Rust's reqwest (hyper) behind a Python API, on its own Tokio runtime.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

AIOHTTP, HTTPX, HTTPX2, PYREQWEST = "aiohttp", "httpx", "httpx2", "pyreqwest"
CLIENTS = (AIOHTTP, HTTPX, HTTPX2, PYREQWEST)
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench-key"}
POOL = 1000  # connections kept per client: more than any benchmark opens
JSON = "application/json"

Reply = tuple[int, str, bytes]  # status, content type, body
Streamed = tuple[int, str, AsyncIterator[bytes]]  # status, content type, chunks


class UpstreamClient(Protocol):
    """One pooled client for the process."""

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def post(self, url: str, body: bytes) -> Reply:
        """POST ``body`` (JSON) to ``url``; the whole answer."""
        ...

    async def stream(self, url: str, body: bytes) -> Streamed:
        """POST ``body`` (JSON) to ``url``; the answer's chunks as they arrive."""
        ...


class AiohttpClient:
    """``aiohttp.ClientSession`` on a ``TCPConnector``, as Modelyard's ``Transport``."""

    def __init__(self) -> None:
        self.session: Any = None

    async def open(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=POOL, keepalive_timeout=30.0)
        self.session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def post(self, url: str, body: bytes) -> Reply:
        async with self.session.post(url, data=body, headers=HEADERS) as response:
            ctype = response.headers.get("Content-Type", JSON)
            return response.status, ctype, await response.read()

    async def stream(self, url: str, body: bytes) -> Streamed:
        response = await self.session.post(url, data=body, headers=HEADERS)
        ctype = response.headers.get("Content-Type", JSON)
        return response.status, ctype, _aiohttp_chunks(response)


async def _aiohttp_chunks(response: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    finally:
        response.release()


class HttpxClient:
    """``httpx.AsyncClient`` (or httpx2's, the same API) with a pool as large as aiohttp's."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.client: Any = None

    async def open(self) -> None:
        httpx = __import__(self.module)
        limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
        self.client = httpx.AsyncClient(limits=limits, headers=HEADERS, timeout=30.0)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def post(self, url: str, body: bytes) -> Reply:
        response = await self.client.post(url, content=body)
        return response.status_code, response.headers.get("Content-Type", JSON), response.content

    async def stream(self, url: str, body: bytes) -> Streamed:
        request = self.client.build_request("POST", url, content=body)
        response = await self.client.send(request, stream=True)
        ctype = response.headers.get("Content-Type", JSON)
        return response.status_code, ctype, _httpx_chunks(response)


async def _httpx_chunks(response: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    finally:
        await response.aclose()


class PyreqwestClient:
    """pyreqwest's async ``Client`` (reqwest and hyper, in Rust)."""

    def __init__(self) -> None:
        self.client: Any = None

    async def open(self) -> None:
        from pyreqwest.client import ClientBuilder

        self.client = ClientBuilder().default_headers(HEADERS).http1_only().build()

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def post(self, url: str, body: bytes) -> Reply:
        response = await self.client.post(url).body_bytes(body).build().send()
        ctype = response.get_header("Content-Type") or JSON
        return response.status, ctype, bytes(await response.bytes())

    async def stream(self, url: str, body: bytes) -> Streamed:
        exits = contextlib.AsyncExitStack()
        request = self.client.post(url).body_bytes(body).build_streamed()
        response = await exits.enter_async_context(request)
        ctype = response.get_header("Content-Type") or JSON
        return response.status, ctype, _pyreqwest_chunks(response.body_reader, exits)


async def _pyreqwest_chunks(reader: Any, exits: contextlib.AsyncExitStack) -> AsyncIterator[bytes]:
    async with exits:
        while (chunk := await reader.read_chunk()) is not None:
            yield bytes(chunk)


def client_named(name: str) -> UpstreamClient:
    """A new, unopened client of kind ``name`` (one of ``CLIENTS``)."""
    if name == AIOHTTP:
        return AiohttpClient()
    if name in (HTTPX, HTTPX2):
        return HttpxClient(name)
    if name == PYREQWEST:
        return PyreqwestClient()
    raise ValueError(f"unknown client {name!r}; known: {', '.join(CLIENTS)}")
