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
    """Serve ``app`` on a free loopback port (yielded) until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=GracefulHttpToolsProtocol,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await eventually(started, "uvicorn listening")
        yield port
    finally:
        server.should_exit = True
        await serving
