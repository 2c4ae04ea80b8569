"""The ASGI servers a benchmark can serve an app with, on loopback, uvloop for each.

``python -m bench.servers --server S --factory module:function --port P [--workers N]`` serves
the app the factory builds (called once per worker) with:

- ``uvicorn``: uvloop and httptools with Modelyard's protocol (``modelyard.server.protocol``:
  the writes of one event-loop turn sent as one), what ``modelyard serve`` runs;
- ``uvicorn-stock``: the same with uvicorn's own httptools protocol (a write per message);
- ``granian``: its ASGI interface (HTTP/1 only, no websockets, no access log), the protocol
  handled in Rust (hyper on Tokio), the app on uvloop; it always runs its workers as child
  processes of a supervising one;
- ``hypercorn``: its asyncio worker on uvloop (h11, in Python), one worker in this process.

Modelyard's own configuration under another server is started this way, with the environment
``modelyard serve`` gives its workers (``bench/stacks.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
from collections.abc import Callable
from typing import Any

from bench.procs import LOOPBACK

UVICORN, UVICORN_STOCK = "uvicorn", "uvicorn-stock"
GRANIAN, HYPERCORN = "granian", "hypercorn"
SERVERS = (UVICORN, UVICORN_STOCK, GRANIAN, HYPERCORN)
LOG_LEVEL = "warning"


def _factory(path: str) -> Callable[[], Any]:
    """``module:function`` imported."""
    module, _, name = path.partition(":")
    if not name:
        raise ValueError(f"factory {path!r}: give it as module:function")
    found: Callable[[], Any] = getattr(importlib.import_module(module), name)
    return found


def _uvicorn(factory: str, port: int, workers: int, stock: bool = False) -> None:
    import uvicorn

    from modelyard.server.protocol import GracefulHttpToolsProtocol

    uvicorn.run(
        factory,
        factory=True,
        host=LOOPBACK,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools" if stock else GracefulHttpToolsProtocol,
        access_log=False,
        log_level=LOG_LEVEL,
        lifespan="on",
    )


def _uvicorn_stock(factory: str, port: int, workers: int) -> None:
    _uvicorn(factory, port, workers, stock=True)


def _granian(factory: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        factory,
        address=LOOPBACK,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels.warning,
        factory=True,
    ).serve()


def _hypercorn(factory: str, port: int, workers: int) -> None:
    import uvloop
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    if workers != 1:
        raise ValueError("hypercorn is measured on one worker (its own process) only")
    config = Config()
    config.bind = [f"{LOOPBACK}:{port}"]
    config.accesslog = None
    config.loglevel = LOG_LEVEL.upper()
    app = _factory(factory)()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # lifespan runs here

    uvloop.run(run())


_RUN = {
    UVICORN: _uvicorn,
    UVICORN_STOCK: _uvicorn_stock,
    GRANIAN: _granian,
    HYPERCORN: _hypercorn,
}


def serve(server: str, factory: str, port: int, workers: int = 1) -> None:
    """Serve ``factory``'s app (``module:function``) on loopback ``port`` until stopped."""
    if server not in _RUN:
        raise ValueError(f"unknown server {server!r}; known: {', '.join(SERVERS)}")
    _RUN[server](factory, port, workers)


def add_arguments(parser: argparse.ArgumentParser, server: str | None = None) -> None:
    """``--server`` (``server`` when not given; required when None), ``--port``, ``--workers``:
    where and how an app is served, for a module that serves one."""
    if server is None:
        parser.add_argument("--server", choices=SERVERS, required=True)
    else:
        parser.add_argument("--server", choices=SERVERS, default=server)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__)
    parser.add_argument("--factory", required=True, help="module:function building the app")
    add_arguments(parser)
    parsed = parser.parse_args(args)
    serve(parsed.server, parsed.factory, parsed.port, parsed.workers)


if __name__ == "__main__":
    main()
