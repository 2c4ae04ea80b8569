"""A real OpenID Connect provider (authlib's server, ``tests/fakes/oidc_provider.py``) on
loopback for the package, and the gateway's app configured to trust it, with a SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelyard.config.schema import Settings
from modelyard.server.app import create_app
from tests.fakes.oidc_provider import OidcProvider

AUDIENCE = "modelyard-admin"
STATE_SECRET = "s" * 40
ADMIN_KEY = "operator-bootstrap-secret-for-sso-tests"


@pytest.fixture(scope="package")
def provider() -> Iterator[OidcProvider]:
    idp = OidcProvider(AUDIENCE)
    idp.add_user("alice", email="alice@example.com", name="Alice", groups=["platform-admins"])
    idp.add_user("bob", email="bob@example.com", groups=["team-a-leads", "team-b"])
    idp.add_user("carol", email="carol@example.com", groups=["team-b"])
    idp.add_user("mallory", email="mallory@example.com", groups=["contractors"])
    with idp.running():
        yield idp


def sso_section(issuer: str, **overrides: Any) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "client_id": "modelyard",
        "audience": AUDIENCE,
        "state_secret": STATE_SECRET,
        "scopes": ["openid", "profile", "email", "groups"],
        "roles": [
            {"value": "platform-admins", "role": "operator"},
            {"value": "team-a-leads", "role": "owner", "projects": ["team-a"]},
            {"value": "team-b", "role": "member", "projects": ["team-b"]},
        ],
        **overrides,
    }


def sso_settings(issuer: str, **overrides: Any) -> Settings:
    return Settings.model_validate(
        {"local": {"enabled": False}, "sso": sso_section(issuer, **overrides)}
    )


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def gateway(
    provider: OidcProvider, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("MODELYARD_ADMIN_KEY", ADMIN_KEY)
    for name in ("MODELYARD_REDIS_URL", "MODELYARD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    provider.token_lifetime_s = 3600
    app = create_app(sso_settings(provider.issuer), store_url=store_url)
    with TestClient(app) as client:
        yield client
