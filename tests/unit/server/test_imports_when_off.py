"""A feature that is off costs its memory too: what a served worker imports, by config.

Each case builds the app in a fresh interpreter as a ``modelyard serve`` worker does (the serve
command's module, then ``app_from_env``), opens it through its lifespan on a SQLite store (the
portal's case then asks for its sign-in page), and lists ``sys.modules``. The store is already
at its head revision, as on every start but the first (a first start migrates, and Alembic
imports every dialect it knows). With the default config the packages made lazy for issue 25
must be absent; with the feature that needs them configured, present (so the case tells the two
apart, and a lazy import that never happens fails too).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from modelyard.store import open_store
from modelyard.store.database import DATABASE_URL_ENV, DB_FILE

# Each case starts a fresh interpreter that imports and opens the whole app (about a second of
# CPU): `make test` runs them; `make test-fast`, the inner loop, leaves them out.
pytestmark = pytest.mark.slow

_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys

    import modelyard.cli.serve  # what serve imports before uvicorn builds the app
    from modelyard.server.app import app_from_env

    app = app_from_env()

    async def status_of(path: str) -> int:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 1), "server": ("test", 80),
        }
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"]

    async def opened() -> None:
        async with app.router.lifespan_context(app):
            if "--portal" in sys.argv:
                print("portal", await status_of("/portal/login"))
            if "--openapi" in sys.argv:
                print("served", await status_of("/admin/v1/openapi.json"))
            modules = sorted(sys.modules)  # before this script imports the admin routes below
            from modelyard.server import admin_routes

            print("openapi documents", admin_routes._document.cache_info().currsize)
            print(json.dumps(modules))

    asyncio.run(opened())
    """
)

# Imported only by the feature that uses them (about 17 MB together).
LAZY = {
    "opentelemetry": "tracing",  # the API too: only observed.py and tracing.py import it
    "opentelemetry.sdk": "tracing",  # the SDK and its exporters
    "psutil": "tracing",  # the SDK's resources import it
    "prometheus_client": "metrics",
    "modelyard.observability.metrics": "metrics",
    "joserfc": "sso",
    "cryptography": "sso",  # through joserfc
    "sqlalchemy.dialects.postgresql": "postgresql",  # a SQLite gateway's upserts are SQLite's
    "jinja2": "portal",  # built at the portal's first request (server/portal_mount.py)
    "modelyard.portal": "portal",
    # genai-prices' data (about 4.7 MB, 0.5 s of CPU): parsed only for a provider it prices.
    "genai_prices": "prices",
    # The admin and evaluation APIs (about 3.4 MB): at their first request (server/admin_mount.py)
    "modelyard.server.admin_routes": "admin",
    "modelyard.server.admin_evals": "admin",
    "modelyard.evals": "admin",
    "modelyard.store.evals": "admin",
}

_BASE = {
    "local": {"enabled": False},
    "store": {"usage_ledger": True},
    "providers": {
        "fake": {"type": "openai_compatible", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}
    },
    "deployments": {"chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]}},
}
# The same target served by OpenAI itself: its list prices come from genai-prices.
_OPENAI = {
    "providers": {"fake": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"}}
}
_TRACING = {"observability": {"tracing": {"enabled": True, "exporter": "none"}}}
_METRICS: dict[str, object] = {"observability": {"metrics": {"enabled": True}}}
_SSO = {
    "sso": {
        "issuer": "https://idp.example.com",
        "client_id": "modelyard",
        "state_secret": "s" * 40,
    }
}


async def _migrated(data: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{data / DB_FILE}")
    await store.aclose()


def _child_lines(tmp_path: Path, config: Path, child: str, *args: str) -> list[str]:
    """What ``child`` printed, run as a worker on ``config`` and a migrated SQLite store."""
    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(_migrated(data))
    env = {**os.environ, "MODELYARD_CONFIG": str(config), "MODELYARD_DATA_DIR": str(data)}
    env.pop(DATABASE_URL_ENV, None)
    argv = [sys.executable, "-c", child, *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def _modules(
    tmp_path: Path, extra: dict[str, object], portal: bool = False, admin: bool = False
) -> set[str]:
    config = tmp_path / "modelyard.yaml"
    config.write_text(yaml.safe_dump({**_BASE, **extra}))
    flags = [*(["--portal"] if portal else []), *(["--openapi"] if admin else [])]
    lines = _child_lines(tmp_path, config, _CHILD, *flags)
    if portal:
        assert "portal 200" in lines  # the sign-in page, served by the portal built just now
    if admin:
        assert "served 200" in lines  # the admin API's document, its routes imported just now
    else:
        assert "openapi documents 0" in lines  # the admin API's, built at its first request
    modules = set(json.loads(lines[-1]))
    assert "modelyard.services.root" in modules  # the app was built and opened
    return modules


def _loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def test_the_default_config_imports_none_of_the_features_it_leaves_off(tmp_path: Path) -> None:
    modules = _modules(tmp_path, {})
    assert [p for p in LAZY if _loaded(modules, p)] == []


def test_the_admin_openapi_document_is_generated_at_its_first_request(tmp_path: Path) -> None:
    """Not at start (pydantic's schema generation, about 80 ms); then once."""
    config = tmp_path / "modelyard.yaml"
    config.write_text(yaml.safe_dump(_BASE))
    lines = _child_lines(tmp_path, config, _CHILD, "--openapi")
    assert lines[:2] == ["served 200", "openapi documents 1"]


@pytest.mark.parametrize(
    ("feature", "extra"),
    [("tracing", _TRACING), ("metrics", _METRICS), ("sso", _SSO), ("prices", _OPENAI)],
    ids=["tracing", "metrics", "sso", "prices"],
)
def test_a_configured_feature_imports_what_it_needs(
    tmp_path: Path, feature: str, extra: dict[str, object]
) -> None:
    modules = _modules(tmp_path, extra)
    needed = [p for p, by in LAZY.items() if by == feature]
    assert needed
    assert [p for p in needed if not _loaded(modules, p)] == []


def test_the_portal_is_imported_at_its_first_request(tmp_path: Path) -> None:
    modules = _modules(tmp_path, {}, portal=True)
    needed = [p for p, by in LAZY.items() if by == "portal"]
    assert needed
    assert [p for p in needed if not _loaded(modules, p)] == []
    # Its catalog page lists every shipped model: the build thread read the price data, so
    # that page's first request does not, on the event loop.
    assert "genai_prices.data" in modules


def test_the_admin_routes_are_imported_at_their_first_request(tmp_path: Path) -> None:
    modules = _modules(tmp_path, {}, admin=True)
    needed = [p for p, by in LAZY.items() if by == "admin"]
    assert needed
    assert [p for p in needed if not _loaded(modules, p)] == []


def test_an_observing_config_lists_the_admin_routes_when_the_app_is_built(tmp_path: Path) -> None:
    """Metrics label a request by its route's template, every template known at build."""
    modules = _modules(tmp_path, _METRICS)
    assert _loaded(modules, "modelyard.server.admin_routes")
