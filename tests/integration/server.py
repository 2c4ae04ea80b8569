"""Run a real ``modelyard serve`` process on loopback for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from tests.spawning import spawning
from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_finished(self, request_ids: Iterable[str]) -> None:
        """Until the access log (the text format) has a line for each request: the server is
        done with them. The line is written after the request gives its in-flight slot back,
        so a client that left is only known to be let go of once its line is there (the
        server notices the leaving in its own time, maybe after the client's next request)."""
        lines = [f" modelyard.access: {rid} " for rid in request_ids]
        log = self.log
        wait_until(lambda: all(line in log() for line in lines), f"the access lines of {lines}")


# A port picked here is bound by ``serve`` a moment later: another process (a client's
# ephemeral port, another test run on the machine) can take it in between. ``serve`` then
# exits saying so, and is started again on another port; nothing else is retried.
PORT_TRIES = 3


class PortTaken(RuntimeError):
    """``serve`` could not bind the port it was given."""


@contextlib.contextmanager
def run_server(
    tmp: Path,
    config: dict[str, Any] | None,
    env: dict[str, str] | None = None,
    ready_s: float = 90,
    extra_args: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    spawning("a `modelyard serve` process", "integration")
    args = [sys.executable, "-m", "modelyard.cli.main", "serve", *extra_args]
    if config is not None:
        path = tmp / "modelyard.yaml"
        path.write_text(yaml.safe_dump(config))
        args += ["--config", str(path)]
    full_env = {**os.environ, "MODELYARD_DATA_DIR": str(tmp / "data"), **(env or {})}
    full_env.pop("MODELYARD_CONFIG", None)
    for tries_left in reversed(range(PORT_TRIES)):
        server = _start(tmp / "server.log", args, full_env)
        try:
            _wait_ready(server, ready_s)
        except PortTaken:
            if not tries_left:
                raise
            continue
        except BaseException:
            _stop(server.process)
            raise
        break
    try:
        yield server
    finally:
        _stop(server.process)


def _start(log_path: Path, args: list[str], env: dict[str, str]) -> RunningServer:
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*args, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return RunningServer(f"http://127.0.0.1:{port}", proc, log_path)


def _wait_ready(server: RunningServer, limit_s: float) -> None:
    def ready() -> bool:
        if server.process.poll() is not None:
            log = server.log()
            if "address already in use" in log.lower():
                raise PortTaken(f"{server.url} was taken before serve bound it:\n{log}")
            raise RuntimeError(f"server exited early:\n{log}")
        try:
            return httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, f"the server ready (its log: {server.log_path})", limit_s)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
