"""The local model worker process: ``python -m modelyard.local.worker --model NAME=PATH ...``.

It loads every model first, then binds and serves the OpenAI-compatible API, and only then prints
one line to stdout, ``{"event": "ready", "port": N}``, which the supervisor waits for. Everything
else it has to say goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import orjson
import uvicorn

from modelyard.local.app import WorkerApp
from modelyard.local.cpus import cpu_count, default_threads
from modelyard.local.engine import EngineOptions, load_engines
from modelyard.local.llama_model import LoadedModel

logger = logging.getLogger("modelyard.local")

DEFAULT_QUEUE_SIZE = 64
_GRACEFUL_SHUTDOWN_S = 3  # below the supervisor's 5 s, so a SIGTERM ends cleanly


def _model_arg(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, Path(path)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m modelyard.local.worker",
        description="Serve local GGUF models over an OpenAI-compatible HTTP API.",
    )
    parser.add_argument(
        "--model",
        action="append",
        type=_model_arg,
        required=True,
        metavar="NAME=PATH",
        help="a model to serve; repeat for several",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="inference threads per model (default: one fewer than the CPUs, at least 1)",
    )
    parser.add_argument(
        "--ctx",
        type=_positive,
        default=None,
        help="context size (default: 4096, capped at the training context)",
    )
    parser.add_argument(
        "--queue-size",
        type=_positive,
        default=DEFAULT_QUEUE_SIZE,
        help="requests that may wait per model before 429",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit when stdin closes (the supervisor holds its other end)",
    )
    args = parser.parse_args(argv)
    names = [name for name, _ in args.model]
    if len(set(names)) != len(names):
        parser.error(f"model names must be unique, got {names}")
    return args


class _Server(uvicorn.Server):
    """A uvicorn server that announces readiness once it is really listening."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config)
        self._sock = sock

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            port = self._sock.getsockname()[1]
            sys.stdout.write(orjson.dumps({"event": "ready", "port": port}).decode() + "\n")
            sys.stdout.flush()


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves, so port 0 resolves before we announce it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # A restarted worker reuses its port while the old connections sit in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _exit_when_stdin_closes(server: uvicorn.Server) -> None:
    """If the supervising process dies, even by SIGKILL, its end of our stdin closes."""

    def watch() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        server.should_exit = True

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _log_loaded(info: LoadedModel) -> None:
    logger.info("loaded %s from %s (n_ctx %d)", info.name, info.path, info.n_ctx)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    options = EngineOptions(args.threads or default_threads(cpu_count()), args.ctx, args.queue_size)
    try:
        engines = load_engines(dict(args.model), options, _log_loaded)
    except (ValueError, RuntimeError, OSError) as exc:
        # llama-cpp-python reports a missing or unreadable model file with these.
        logger.error("could not load the models: %s", exc)
        return 1
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        logger.error("could not listen on %s:%d: %s", args.host, args.port, exc)
        return 1
    config = uvicorn.Config(
        WorkerApp(engines),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(config, sock)
    if args.exit_with_parent:
        _exit_when_stdin_closes(server)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
