"""One way to run a fake upstream: uvicorn in a daemon thread on a free loopback port."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


def serve_in_thread(
    app: ASGIApp, name: str, log_filter: logging.Filter, graceful_s: int = 2
) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Start ``app`` and return once the port accepts connections (polled, with a deadline)."""
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
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    logging.getLogger("uvicorn.error").addFilter(log_filter)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(STOP_TIMEOUT_S)
            sock.close()
            raise RuntimeError(f"the fake upstream {name} did not start")
        time.sleep(0.005)
    return server, thread, sock.getsockname()[1]
