"""Supervising the local model worker from the ``modelyard serve`` process.

``LocalRuntime`` spawns ``python -m modelyard.local.worker``, waits for its ready line and keeps
it alive: a monitor thread restarts a worker that dies unexpectedly, with exponential backoff,
on the port the first worker bound, so the gateway's upstream URL never changes. The runtime is
plain threads and blocking calls; it is started before the gateway's event loop exists.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelyard.local.worker_process import (
    STOP_GRACE_S,
    LocalRuntimeError,
    SpawnFailed,
    WorkerProcess,
    describe_exit,
)

logger = logging.getLogger("modelyard.local")

_BACKOFF_INITIAL_S = 0.5
_BACKOFF_MAX_S = 30.0
_HEALTHY_RESET_S = 60.0  # a worker that ran this long before dying restarts without delay growth


@dataclass(frozen=True)
class LocalRuntimeSpec:
    """What the local runtime serves and how."""

    models: Mapping[str, Path]
    host: str = "127.0.0.1"
    port: int = 0
    threads: int | None = None
    ctx: int | None = None
    queue_size: int = 64
    ready_timeout_s: float = 120.0


class LocalRuntime:
    """The local model worker as seen by the gateway: start it, reach it, stop it.

    Not started twice; not restarted after ``stop``.
    """

    def __init__(self, spec: LocalRuntimeSpec) -> None:
        if not spec.models:
            raise ValueError("LocalRuntimeSpec.models is empty: there is nothing to serve")
        self.spec = spec
        self._lock = threading.Lock()
        self._proc: WorkerProcess | None = None
        self._port: int | None = None
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The worker's port, fixed by the first successful start."""
        if self._port is None:
            raise LocalRuntimeError("the local runtime has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:43121/v1``."""
        host = f"[{self.spec.host}]" if ":" in self.spec.host else self.spec.host
        return f"http://{host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    @property
    def alive(self) -> bool:
        """True while a worker runs and has announced it is ready."""
        proc = self._proc
        return (
            not self._stopping.is_set()
            and proc is not None
            and proc.port is not None
            and proc.popen.poll() is None
        )

    def start(self) -> None:
        """Spawn the worker and wait until it serves; then watch over it.

        Raises:
            LocalRuntimeError: the worker failed or timed out before it was ready; the message
                carries the end of its stderr.
        """
        if self._monitor is not None or self._stopping.is_set():
            raise LocalRuntimeError("a LocalRuntime can be started only once")
        proc = self._launch()
        logger.info("local model worker %d ready at %s", proc.pid, self.base_url)
        self._monitor = threading.Thread(
            target=self._watch, name="local-worker-monitor", daemon=True
        )
        self._monitor.start()

    def stop(self) -> None:
        """Stop the worker (SIGTERM, SIGKILL after 5 s) and the monitor; idempotent."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None:
            proc.terminate(STOP_GRACE_S)
        monitor = self._monitor
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join()

    def _argv(self, port: int) -> list[str]:
        spec = self.spec
        argv = [sys.executable, "-m", "modelyard.local.worker", "--exit-with-parent"]
        for name, path in spec.models.items():
            argv += ["--model", f"{name}={path}"]
        argv += ["--host", spec.host, "--port", str(port), "--queue-size", str(spec.queue_size)]
        if spec.threads is not None:
            argv += ["--threads", str(spec.threads)]
        if spec.ctx is not None:
            argv += ["--ctx", str(spec.ctx)]
        return argv

    def _launch(self) -> WorkerProcess:
        with self._lock:
            if self._stopping.is_set():
                raise LocalRuntimeError("the local runtime is stopping")
            port = self._port if self._port is not None else self.spec.port
            proc = WorkerProcess(self._argv(port))
            self._proc = proc
        self._port = proc.wait_ready(self.spec.ready_timeout_s)
        return proc

    def _watch(self) -> None:
        delay = _BACKOFF_INITIAL_S
        while True:
            proc = self._proc
            if proc is not None:
                returncode = proc.popen.wait()
                if self._stopping.is_set():
                    return
                if proc.healthy_for() >= _HEALTHY_RESET_S:
                    delay = _BACKOFF_INITIAL_S
                logger.error(
                    "local model worker %d %s%s; restarting in %.1fs; last stderr lines:\n%s",
                    proc.pid,
                    describe_exit(returncode),
                    proc.note,
                    delay,
                    proc.stderr_tail(),
                )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, _BACKOFF_MAX_S)
            self._restart()

    def _restart(self) -> None:
        try:
            proc = self._launch()
        except SpawnFailed as exc:
            logger.error("%s", exc)
            with self._lock:
                self._proc = None
        except LocalRuntimeError:
            return  # the failed process is current; the monitor logs its exit next
        else:
            logger.warning("local model worker restarted as %d at %s", proc.pid, self.base_url)
