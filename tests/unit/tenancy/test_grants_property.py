"""Least privilege, as a property (issue 17): over roles x scopes (projects, deployment lists,
limits, expiries) x operations (create a key, change a key's limits), nothing a principal makes
is wider than what it holds, and everything within what it holds is allowed.

Each example runs the real use cases (``TenancyAdmin``) on a real SQLite store: the grantor is
a key the operator stored, authenticated through a ``KeyRing`` as a request would be. The
expected outcome is computed here, part by part, independently of ``tenancy/grants.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.core.errors import ModelyardError, PermissionDenied
from modelyard.services.tenancy import KeySpec, TenancyAdmin
from modelyard.store import Store, open_store
from modelyard.tenancy.keys import KeyRing, Principal
from modelyard.tenancy.model import ApiKey, Limits
from tests.properties import examples

NOW = datetime(2030, 1, 1, tzinfo=UTC)  # later than the wall clock: nothing expires mid-test
OPERATOR = Principal("op", role="operator")
PROJECTS = ("p", "q")
DEPLOYMENTS = ("a", "b", "c")
RANK = {"member": 0, "owner": 1, "operator": 2}
LIMIT_FIELDS = tuple(f.name for f in fields(Limits))


@dataclass(frozen=True)
class Scope:
    """A grant as drawn: role, project, deployments, limits, expiry in days (None: no bound)."""

    role: str
    project: str | None
    deployments: tuple[str, ...] | None
    limits: Limits
    days: int | None

    def spec(self) -> KeySpec:
        return KeySpec(
            self.project,
            self.role,
            deployments=self.deployments,
            limits=self.limits,
            expires_in=timedelta(days=self.days) if self.days else None,
        )


_limit = st.none() | st.integers(1, 6)
_limits = st.builds(Limits, _limit, _limit, _limit, _limit)
_deployments = st.none() | st.lists(st.sampled_from(DEPLOYMENTS), min_size=1, unique=True).map(
    lambda names: tuple(sorted(names))
)


@st.composite
def scopes(draw: st.DrawFn, roles: tuple[str, ...] = tuple(RANK)) -> Scope:
    role = draw(st.sampled_from(roles))
    project = None if role == "operator" else draw(st.sampled_from(PROJECTS))
    return Scope(
        role, project, draw(_deployments), draw(_limits), draw(st.none() | st.integers(1, 4))
    )


# --- the expected outcome, part by part ---------------------------------------------------


def _num_within(value: int | None, bound: int | None) -> bool:
    return bound is None or (value is not None and value <= bound)


def _set_within(names: tuple[str, ...] | None, bound: tuple[str, ...] | None) -> bool:
    return bound is None or (names is not None and set(names) <= set(bound))


def _time_within(moment: datetime | None, bound: datetime | None) -> bool:
    return bound is None or (moment is not None and _utc(moment) <= _utc(bound))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def may_manage(grantor: ApiKey, project: str | None, role: str) -> bool:
    if grantor.role == "operator":
        return True
    return grantor.role == "owner" and project == grantor.project_id and role != "operator"


def wider_parts(key: ApiKey, bound: ApiKey) -> list[str]:
    """The parts of ``key`` wider than ``bound``."""
    wider = []
    if RANK[key.role] > RANK[bound.role]:
        wider.append("role")
    if bound.role != "operator" and key.project_id != bound.project_id:
        wider.append("project")
    if not _set_within(key.deployments, bound.deployments):
        wider.append("deployments")
    for name in LIMIT_FIELDS:
        if not _num_within(getattr(key.limits, name), getattr(bound.limits, name)):
            wider.append(name)
    if not _time_within(key.expires_at, bound.expires_at):
        wider.append("expires")
    return wider


# --- the harness ----------------------------------------------------------------------------


class World:
    """One store for every example, driven on one event loop."""

    def __init__(self, runner: asyncio.Runner, store: Store) -> None:
        self.run = runner.run
        self.admin = TenancyAdmin(store, clock=lambda: NOW)

    def stored(self, scope: Scope) -> tuple[ApiKey, str]:
        key, fresh = self.run(self.admin.create_key(OPERATOR, scope.spec()))
        return key, fresh.secret

    def principal(self, key: ApiKey, secret: str) -> Principal:
        """The grantor as a request sees it: its key through the key ring."""
        return KeyRing([key], []).authenticate(secret, now=NOW)

    def attempt(self, operation: Any) -> tuple[ApiKey | None, ModelyardError | None]:
        try:
            return self.run(operation), None
        except ModelyardError as exc:
            return None, exc


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("grants") / "store.db"
    with asyncio.Runner() as runner:
        store = runner.run(open_store(f"sqlite+aiosqlite:///{path}"))
        admin = TenancyAdmin(store)
        for project in PROJECTS:
            runner.run(admin.create_project(OPERATOR, project, None, Limits()))
        yield World(runner, store)
        runner.run(store.aclose())


_EXAMPLES = examples(200)
# Each outcome must be reached this often for a run to count (10 of the full 200's draws).
_ENOUGH = max(3, _EXAMPLES // 20)
_SETTINGS = settings(
    max_examples=_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_a_created_key_is_never_wider_than_its_creator(world: World):
    counts = {"allowed": 0, "refused": 0}

    @_SETTINGS
    @given(grantor=scopes(), wanted=scopes())
    def run(grantor: Scope, wanted: Scope) -> None:
        held, secret = world.stored(grantor)
        made, error = world.attempt(_created(world, world.principal(held, secret), wanted))
        expected = may_manage(held, wanted.project, wanted.role) and not wider_parts(
            _named(wanted, held), held
        )
        if made is not None:
            counts["allowed"] += 1
            assert wider_parts(made, held) == [], (grantor, wanted, made)
            assert expected, (grantor, wanted, "allowed, but should have been refused")
        else:
            counts["refused"] += 1
            assert isinstance(error, PermissionDenied), error
            assert not expected, (grantor, wanted, error)

    run()
    # Both outcomes reached:
    assert counts["allowed"] >= _ENOUGH and counts["refused"] >= _ENOUGH, counts


async def _created(world: World, principal: Principal, wanted: Scope) -> ApiKey:
    key, _ = await world.admin.create_key(principal, wanted.spec())
    return key


def _named(wanted: Scope, held: ApiKey) -> ApiKey:
    """The key asked for; a part left unset is the most the grantor may give (its own)."""
    limits = Limits(
        *(
            held_value if (value := getattr(wanted.limits, n)) is None else value
            for n, held_value in ((n, getattr(held.limits, n)) for n in LIMIT_FIELDS)
        )
    )
    return ApiKey(
        "x", "", wanted.role, wanted.project, None,
        wanted.deployments or held.deployments,
        limits,
        NOW + timedelta(days=wanted.days) if wanted.days else held.expires_at,
        None, NOW,
    )  # fmt: skip


def test_a_change_of_limits_never_widens_beyond_the_key_or_the_changer(world: World):
    counts = {"allowed": 0, "refused": 0}

    @_SETTINGS
    @given(grantor=scopes(), target=scopes(roles=("owner", "member")), limits=_limits)
    def run(grantor: Scope, target: Scope, limits: Limits) -> None:
        held, secret = world.stored(grantor)
        principal = world.principal(held, secret)
        other, _ = world.stored(target)
        for key_id in (other.id, held.id):  # another key, and the grantor's own key
            bound = _current(world, held.id)  # its own limits as stored before this change
            subject = _current(world, key_id)
            changed, error = world.attempt(
                world.admin.set_key_limits(principal, subject.id, limits)
            )
            within = all(
                _num_within(getattr(limits, n), getattr(subject.limits, n))
                or _num_within(getattr(limits, n), getattr(bound.limits, n))
                for n in LIMIT_FIELDS
            )
            expected = may_manage(bound, subject.project_id, subject.role) and within
            if changed is not None:
                counts["allowed"] += 1
                assert changed.limits == limits and expected, (grantor, target, limits)
            else:
                counts["refused"] += 1
                assert isinstance(error, PermissionDenied), error
                assert _current(world, subject.id).limits == subject.limits  # nothing written
                assert not expected, (grantor, target, limits, error)

    run()
    assert counts["allowed"] >= _ENOUGH and counts["refused"] >= _ENOUGH, counts


def _current(world: World, key_id: str) -> ApiKey:
    return world.run(world.admin.key(OPERATOR, key_id))
