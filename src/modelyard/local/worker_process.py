"""One spawned local model worker: its process, its output, its readiness, its end."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections import deque
from typing import IO

import orjson

from modelyard.core.errors import InternalError

logger = logging.getLogger("modelyard.local")

STOP_GRACE_S = 5.0
"""How long a worker may take to exit after SIGTERM before it gets SIGKILL."""
_STDERR_LINES = 200
_LOGGED_STDERR_LINES = 20


class LocalRuntimeError(InternalError):
    """The local model worker could not be started."""


class SpawnFailed(LocalRuntimeError):
    """The worker process could not even be created."""


def describe_exit(returncode: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


class WorkerProcess:
    """One spawned worker, and the threads that drain its stdout and stderr."""

    def __init__(self, argv: list[str]) -> None:
        try:
            # Its own session: a Ctrl-C meant for the gateway must not kill the worker behind
            # the supervisor's back. Parent death is noticed through stdin instead.
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise SpawnFailed(f"could not start the local model worker: {exc}") from exc
        self.port: int | None = None
        self.ready_at: float | None = None
        self.note = ""
        self._tail: deque[str] = deque(maxlen=_STDERR_LINES)
        self._ready_or_eof = threading.Event()
        self._readers = [
            threading.Thread(target=self._read_stdout, name="local-worker-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="local-worker-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read_stdout(self) -> None:
        stream: IO[bytes] | None = self.popen.stdout
        assert stream is not None
        for line in stream:
            if self.port is None and line.startswith(b"{"):
                self._parse_ready(line)
        self._ready_or_eof.set()

    def _parse_ready(self, line: bytes) -> None:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        port = message.get("port") if isinstance(message, dict) else None
        if message.get("event") == "ready" and isinstance(port, int):
            self.port = port
            self.ready_at = time.monotonic()
            self._ready_or_eof.set()

    def _read_stderr(self) -> None:
        stream: IO[bytes] | None = self.popen.stderr
        assert stream is not None
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip()
            self._tail.append(line)
            logger.debug("worker %d: %s", self.pid, line)

    def stderr_tail(self, lines: int = _LOGGED_STDERR_LINES) -> str:
        if self.popen.poll() is not None:
            # Let the reader catch up with what the dead process wrote last.
            self._readers[1].join(timeout=2.0)
        tail = list(self._tail)[-lines:]
        return "\n".join(tail) if tail else "(no output on stderr)"

    def healthy_for(self) -> float:
        """Seconds between becoming ready and now (or exiting)."""
        if self.ready_at is None:
            return 0.0
        return time.monotonic() - self.ready_at

    def wait_ready(self, timeout: float) -> int:
        """Block until the ready line; return the bound port."""
        if not self._ready_or_eof.wait(timeout):
            self.note = f" (not ready within {timeout:g}s)"
            self.popen.kill()
            self.popen.wait()
            raise LocalRuntimeError(
                f"the local model worker did not become ready within {timeout:g}s; "
                f"last stderr lines:\n{self.stderr_tail()}"
            )
        if self.port is None:
            try:
                returncode = self.popen.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                # It closed its stdout without a ready line but lingers: it will never serve.
                self.popen.kill()
                returncode = self.popen.wait()
            raise LocalRuntimeError(
                f"the local model worker {describe_exit(returncode)} before it was ready; "
                f"last stderr lines:\n{self.stderr_tail()}"
            )
        return self.port

    def terminate(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdin is not None:
            self.popen.stdin.close()
