"""uvicorn on our server protocol, serving an ASGI app in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from modelyard.server.protocol import GracefulHttpToolsProtocol
from tests.waiting import eventually


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[int]:
    """Serve ``app`` on a free loopback port (yielded) until the block ends.

    The socket is bound here and handed to uvicorn: a port picked, closed and bound again later
    could be taken in between by another process (another test run's server or client)."""
    config = uvicorn.Config(
        app, http=GracefulHttpToolsProtocol, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)

    async def started() -> bool:
        return server.started

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        try:
            await eventually(started, "uvicorn listening")
            yield listening.getsockname()[1]
        finally:
            server.should_exit = True
            await serving
