"""The portal is built at its first use, once, off the event loop (``server/portal_mount.py``)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from starlette.datastructures import State

from modelyard.config.portal import PortalConfig
from modelyard.server import portal_mount
from modelyard.server.portal_mount import BuiltPortal, LazyPortal


def test_concurrent_first_uses_build_the_portal_once_in_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[str] = []
    real = portal_mount.build_portal

    def counted(config_path: Path | None, config: PortalConfig) -> BuiltPortal:
        builds.append(threading.current_thread().name)
        return real(config_path, config)

    monkeypatch.setattr(portal_mount, "build_portal", counted)
    lazy = LazyPortal(None, PortalConfig())
    state = State()

    async def first_uses() -> list[BuiltPortal]:
        return list(await asyncio.gather(*(lazy.built(state) for _ in range(8))))

    built = asyncio.run(first_uses())
    assert len(builds) == 1
    assert builds[0] != threading.main_thread().name  # not on the event loop's thread
    assert all(b is built[0] for b in built)
    assert state.portal is built[0].portal  # where the portal's pages find it
    # Compiled once: rendering a page reads no file (the loader is never asked again).
    env = built[0].portal.env
    assert env.loader is not None
    assert not env.auto_reload  # no stat of the template per page either
    monkeypatch.setattr(env.loader, "get_source", _no_file)
    assert "<form" in env.get_template("login.html").render(
        user=None, csrf="t", nav=[], path="/portal/login", prefix="/portal", message=None,
        sso_name=None, sso_url="/auth/login",
    )  # fmt: skip


def _no_file(*args: object) -> None:
    raise AssertionError("a template was read from disk after the portal was built")


def test_the_mount_is_where_the_portal_s_pages_link() -> None:
    from modelyard.portal.web import PREFIX

    assert portal_mount.PREFIX == PREFIX
