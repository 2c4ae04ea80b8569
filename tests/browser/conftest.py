"""A real ``modelyard serve`` (a SQLite store, an operator key, a fake OpenAI upstream) and
Debian's chromium driven by Playwright; every page is screenshotted at a laptop's and a
phone's size into ``build/artifacts/portal`` (ignored by git), or into the folder
``MODELYARD_SCREENSHOTS`` names: ``make screenshots`` refreshes the committed copies in
``docs/portal/screenshots`` that way, deliberately."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from tests.fakes.openai_upstream import FakeOpenAI
from tests.integration.conftest import UPSTREAM_KEY
from tests.integration.server import RunningServer, run_server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_KEY = "my-portaltests-operator-bootstrap-secret"
SIZES = ((1280, 800), (390, 844))
SHOTS = Path(
    os.environ.get("MODELYARD_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "build" / "artifacts" / "portal"
)


def portal_config(fake: FakeOpenAI) -> dict[str, Any]:
    provider = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": "env::UP_KEY"}
    return {
        "local": {"enabled": False},
        "providers": {"fake": provider},
        "deployments": {
            "live": {
                "description": "the deployment the tests re-point",
                "targets": [{"provider": "fake", "model": "gpt-4o-mini"}],
            },
            "other": {"targets": [{"provider": "fake", "model": "gpt-4o"}]},
        },
        "prices": {"fake/gpt-4o-mini": {"input": 2, "output": 8}},
    }


@dataclass
class Gateway:
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"authorization": f"Bearer {ADMIN_KEY}"}
        answer = httpx.request(
            method, f"{self.url}/admin/v1{path}", headers=headers, timeout=30, **kwargs
        )
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def key(self, project: str | None, role: str, name: str | None = None) -> str:
        body = {"project": project, "role": role, "name": name}
        secret: str = self.admin("POST", "/keys", json=body)["secret"]
        return secret


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("portal")
    env = {"UP_KEY": UPSTREAM_KEY, "MODELYARD_ADMIN_KEY": ADMIN_KEY}
    with run_server(tmp, portal_config(upstream), env=env) as server:
        yield Gateway(server)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert CHROMIUM.exists(), "install chromium: make os-packages (tools/os-packages.sh)"
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Playwright) -> Iterator[BrowserContext]:
    """A fresh chromium profile per test (no cookies carried between tests)."""
    with tempfile.TemporaryDirectory(prefix="portal-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport={"width": SIZES[0][0], "height": SIZES[0][1]},
        )
        try:
            yield context
        finally:
            context.close()


def sign_in(page: Page, gateway: Gateway, key: str) -> None:
    page.goto(f"{gateway.url}/portal/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal/catalog")


def shoot(page: Page, name: str) -> None:
    """The page as it is, at each size (the phone's first), back to the laptop's size."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in reversed(SIZES):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{width}x{height}.png"))
        # Responsive: wide tables scroll inside their box, the page itself never sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
