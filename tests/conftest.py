"""Test-wide guards: nothing in the suite may reach the network beyond loopback; every test that
starts a server or loads the model is marked so that the fast run leaves it out."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.migrated import MigratedSqlite
from tests.properties import register_profiles

register_profiles()  # before Hypothesis's plugin loads the one --hypothesis-profile names

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _allowed(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # Unix sockets and the like stay on this machine
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _allowed(address):
        raise ConnectionRefusedError(f"tests may only reach loopback, not {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _allowed(address):
        raise ConnectionRefusedError(f"tests may only reach loopback, not {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    """No test writes into the user's own data directory (the ledger's journal, a default
    database): each test process, and the servers it starts, get a scratch one, unless the
    run names one in ``MODELYARD_DATA_DIR``."""
    if not os.environ.get("MODELYARD_DATA_DIR"):
        scratch = tempfile.mkdtemp(prefix="modelyard-tests-data-")
        os.environ["MODELYARD_DATA_DIR"] = scratch
        config.stash[_SCRATCH] = scratch


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = config.stash.get(_SCRATCH, None)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


_SCRATCH = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> MigratedSqlite:
    """Migrated SQLite databases by copy of one migrated per process (``tests/migrated.py``)."""
    return MigratedSqlite(tmp_path_factory.mktemp("migrated"))


# How a test is marked without anyone remembering to: by where it lives, by the shared fixtures
# that start servers, and by the backend a parametrised fixture picked. A test that starts a
# server in its own body carries the marker itself; `make test-fast` (tests.spawning.FAST_ENV)
# fails any test that reaches a server without one.
_BY_FIXTURE = {
    "postgres_url": ("postgres",),
    "redis_url": ("redis",),
    "gateway": ("integration", "local_model"),  # its config keeps the embedded model enabled
}
_BY_PARAM = {("store_url", "postgresql"): "postgres", ("make_limiter", "redis"): "redis"}
_BY_PATH = {
    "integration": ("integration",),
    "browser": ("integration", "browser"),  # a real server driven by Debian's chromium
    "integration/local": ("local_model",),
    "adversarial": ("adversarial",),
}
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names: set[str] = set()
        path = item.path.resolve()
        where = path.relative_to(_TESTS).as_posix() if path.is_relative_to(_TESTS) else ""
        for prefix, marks in _BY_PATH.items():
            if where.startswith(prefix + "/"):
                names.update(marks)
        for fixture in getattr(item, "fixturenames", ()):
            names.update(_BY_FIXTURE.get(fixture, ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        names.update(mark for (arg, value), mark in _BY_PARAM.items() if params.get(arg) == value)
        for name in sorted(names - {m.name for m in item.iter_markers()}):
            item.add_marker(name)
