"""The admin API fuzzed as a project owner with a narrow key (issue 17 #5, least privilege):
whatever body an owner sends to create a key or change a key's limits, the answer is below 500,
and any key it made or changed is no wider than the owner's own key. Through HTTP, so the
route's own checks (known deployments, field types) run before the grant's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from modelyard.server.app import create_app
from tests.fakes.openai_upstream import FakeOpenAI
from tests.unit.admin.conftest import ADMIN_KEY, UPSTREAM_KEY, Admin, admin_settings, wait_for

pytestmark = pytest.mark.slow

P = "/admin/v1"
OWN = {"rpm": 10, "tpm": 1000, "daily_budget_micros": 2_000_000, "monthly_budget_micros": None}
LIMIT_FIELDS = ("rpm", "tpm", "daily_budget_micros", "monthly_budget_micros")
_number = st.none() | st.integers(1, 20) | st.integers(1, 2000)
_dollars = st.none() | st.sampled_from(["0.5", "1", "2", "2.000001", "3", 1, 5])
_deployments = st.lists(st.sampled_from(["chat", "other"]), min_size=1, max_size=2, unique=True)


@st.composite
def key_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A create body: each field present or not, within the owner's grant or not."""
    choices: dict[str, Any] = {
        "project": st.sampled_from(["p", "q"]),
        "role": st.sampled_from(["member", "owner", "operator"]),
        "deployments": _deployments,
        "rpm": _number,
        "tpm": _number,
        "daily_budget_usd": _dollars,
        "monthly_budget_usd": _dollars,
        "expires_in": st.sampled_from(["1h", "1d", "2d", "3650d"]),
    }
    body = {name: draw(value) for name, value in choices.items() if draw(st.booleans())}
    if body.get("role") == "operator":
        body.pop("project", None)
    elif "project" not in body:
        body["project"] = "p"
    return body


@st.composite
def limit_bodies(draw: st.DrawFn) -> dict[str, Any]:
    choices = {"rpm": _number, "tpm": _number, "daily_budget_usd": _dollars,
               "monthly_budget_usd": _dollars}  # fmt: skip
    return {name: draw(value) for name, value in choices.items() if draw(st.booleans())}


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    with pytest.MonkeyPatch.context() as env, FakeOpenAI(api_key=UPSTREAM_KEY) as upstream:
        env.setenv("MODELYARD_ADMIN_KEY", ADMIN_KEY)
        for name in ("MODELYARD_REDIS_URL", "MODELYARD_DATABASE_URL"):
            env.delenv(name, raising=False)
        store: Path = tmp_path_factory.mktemp("grants") / "store.db"
        app = create_app(
            admin_settings(upstream.base_url), store_url=f"sqlite+aiosqlite:///{store}"
        )
        with TestClient(app) as client:
            yield Admin(client)


def _within(key: dict[str, Any], owner: dict[str, Any]) -> list[str]:
    """The parts of ``key`` (as the API shows it) wider than ``owner``'s."""
    wider = []
    if key["role"] not in ("member", "owner") or key["project"] != owner["project"]:
        wider.append("role or project")
    if key["deployments"] is None or not set(key["deployments"]) <= set(owner["deployments"]):
        wider.append("deployments")
    for name in LIMIT_FIELDS:
        bound, value = owner[name], key[name]
        if bound is not None and (value is None or value > bound):
            wider.append(name)
    if key["expires_at"] is None or _moment(key["expires_at"]) > _moment(owner["expires_at"]):
        wider.append("expires_at")
    return wider


def test_an_owner_never_makes_or_widens_a_key_beyond_its_own(admin: Admin):
    admin.project("p")
    admin.project("q")
    owner = admin.key("p", "owner", deployments=["chat"], rpm=10, tpm=1000,
                      daily_budget_usd="2", expires_in="1d")  # fmt: skip
    wait_for(lambda: admin.call(owner["secret"], "GET", P + "/me").status_code == 200)
    member = admin.key("p", "member")  # made by the operator: wider than the owner
    seen: set[int] = set()

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(create=key_bodies(), change=limit_bodies(), whose=st.sampled_from(["own", "member"]))
    def run(create: dict[str, Any], change: dict[str, Any], whose: str) -> None:
        own = _current(admin, owner)  # its limits as they are now (a change may lower them)
        made = admin.call(owner["secret"], "POST", P + "/keys", json=create)
        seen.add(made.status_code)
        assert made.status_code in (201, 400, 403), made.text
        if made.status_code == 201:
            assert _within(made.json(), own) == [], (create, made.json())
        before = _current(admin, owner if whose == "own" else member)
        changed = admin.call(owner["secret"], "PATCH", f"{P}/keys/{before['id']}", json=change)
        seen.add(changed.status_code)
        assert changed.status_code in (200, 400, 403), changed.text
        if changed.status_code == 200:
            after = changed.json()
            for name in LIMIT_FIELDS:  # no wider than it was, or than the owner's own
                assert any(
                    bound is None or (after[name] is not None and after[name] <= bound)
                    for bound in (before[name], own[name])
                ), (name, before, after, own)

    run()
    assert {201, 403, 200} <= seen, seen  # both outcomes reached, on both operations


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _current(admin: Admin, key: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = admin.ok(ADMIN_KEY, "GET", f"{P}/keys/{key['id']}")
    return shown
