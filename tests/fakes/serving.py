"""One way to run a fake upstream: uvicorn in a daemon thread on a free loopback port."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


class _Server(uvicorn.Server):
    """A uvicorn server that says when its start-up is over, whether it started or not."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.settled.set()

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            super().run(sockets)
        finally:
            self.settled.set()  # it failed before start-up, or has stopped


def serve_in_thread(
    app: ASGIApp, name: str, log_filter: logging.Filter, graceful_s: int = 2
) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Start ``app`` and return once the port accepts connections (with a deadline)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        log_config=None,  # leave the test process's logging configuration alone
        access_log=False,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=graceful_s,
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    logging.getLogger("uvicorn.error").addFilter(log_filter)
    thread.start()
    if not server.settled.wait(STARTUP_TIMEOUT_S) or not server.started:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        sock.close()
        raise RuntimeError(f"the fake upstream {name} did not start")
    return server, thread, sock.getsockname()[1]
