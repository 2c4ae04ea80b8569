"""Portal sessions, in memory and in the store alike: random ids, idle expiry and a lifetime on
an injected clock, sign-out, ending every session of a person or a key; a bounded table in
memory; the store keeps no usable cookie value; the limit on failed sign-ins per address."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpx2 import Response

from modelyard.portal.session import (
    MemorySessions,
    Origin,
    Sessions,
    SignInAttempts,
    user_of_identity,
    user_of_key,
)
from modelyard.portal.stored_sessions import StoredSessions
from modelyard.store import Store, StoreError, open_store
from modelyard.store.portal_sessions import PortalSessions
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.sso import Identity
from tests.migrated import MigratedSqlite
from tests.unit.portal.conftest import ADMIN_KEY, Admin, csrf_of, sign_in

OWNER = user_of_key(Principal(key_id="abc123def456", role="owner", project_id="alpha"))
KEY = Origin.of_key("my-abc123def456-secret")
DANA = Identity(
    "https://idp", "dana", "dana@example.com", "Dana", "owner", ("alpha",),
    (("alpha", "owner"), ("beta", "member")),
)  # fmt: skip
IDLE, MAX_AGE = timedelta(minutes=30), timedelta(hours=8)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path, migrated_sqlite: MigratedSqlite) -> AsyncIterator[Store]:
    opened = await open_store(migrated_sqlite.url(tmp_path / "modelyard.db"))
    yield opened
    await opened.aclose()


Make = Callable[[Clock], Sessions]


@pytest.fixture(params=["memory", "store"])
def make(request: pytest.FixtureRequest, store: Store) -> Make:
    def build(clock: Clock) -> Sessions:
        if request.param == "memory":
            return MemorySessions(clock, idle=IDLE, max_age=MAX_AGE)
        return StoredSessions(store, clock, idle=IDLE, max_age=MAX_AGE)

    return build


async def test_a_session_expires_after_being_idle_and_each_request_restarts_its_clock(make: Make):
    clock = Clock()
    sessions = make(clock)
    session = await sessions.open(OWNER, KEY)
    clock.now += timedelta(minutes=29)
    found = await sessions.get(session.id)  # restarts the idle clock
    assert found is not None and found.user.principal.key_id == "abc123def456"
    assert found.csrf == session.csrf and found.key_digest == KEY.key_digest
    clock.now += timedelta(minutes=29)
    assert await sessions.get(session.id) is not None
    clock.now += timedelta(minutes=30)
    assert await sessions.get(session.id) is None
    clock.now -= timedelta(minutes=30)  # gone for good, not merely hidden
    assert await sessions.get(session.id) is None


async def test_a_session_in_use_still_ends_at_its_lifetime(make: Make):
    clock = Clock()
    sessions = make(clock)
    session = await sessions.open(OWNER, KEY)
    for _ in range(16):  # 16 x 29 min = 7 h 44 min, never idle for long
        clock.now += timedelta(minutes=29)
        assert await sessions.get(session.id) is not None
    clock.now += timedelta(minutes=16)
    assert await sessions.get(session.id) is None


async def test_ids_and_csrf_tokens_are_random_and_unknown_ids_find_nothing(make: Make):
    sessions = make(Clock())
    a, b = await sessions.open(OWNER, KEY), await sessions.open(OWNER, KEY)
    assert len({a.id, b.id, a.csrf, b.csrf}) == 4
    assert min(len(a.id), len(a.csrf)) >= 40
    assert await sessions.get("forged") is None and await sessions.get(None) is None
    assert await sessions.get("x" * 10_000) is None
    assert a.csrf_ok(a.csrf) and not a.csrf_ok(b.csrf) and not a.csrf_ok(None)


async def test_sign_out_and_a_persons_or_keys_revocation_end_their_sessions(make: Make):
    sessions = make(Clock())
    by_key = await sessions.open(OWNER, KEY)
    origin = Origin(identity=DANA, id_token="eyJ.id.token")
    dana = await sessions.open(user_of_identity(DANA), origin)
    dana_too = await sessions.open(user_of_identity(DANA), origin)
    other = await sessions.open(user_of_key(Principal(key_id="zzz", role="member")), KEY)
    closed = await sessions.close(dana.id)
    assert closed is not None and closed.id_token == "eyJ.id.token"
    assert await sessions.get(dana.id) is None and await sessions.close(dana.id) is None
    assert await sessions.end_all(subject="dana") == 1
    assert await sessions.get(dana_too.id) is None
    assert await sessions.end_all(key_id="abc123def456") == 1
    assert await sessions.get(by_key.id) is None
    assert await sessions.get(other.id) is not None


async def test_a_person_switches_project_and_the_session_remembers_it(make: Make):
    sessions = make(Clock())
    user = user_of_identity(DANA)
    assert (user.role, user.projects, user.choices) == ("owner", ("alpha",), ("alpha", "beta"))
    session = await sessions.open(user, Origin(identity=DANA))
    await sessions.act_in(session, user_of_identity(DANA, "beta"))
    again = await sessions.get(session.id)
    assert again is not None and again.identity is not None
    assert (again.user.role, again.user.projects) == ("member", ("beta",))
    assert again.user.principal.project_id == "beta" and again.user.principal.user == "dana"
    assert again.user.display_name == "Dana (member)"


async def test_the_memory_table_is_bounded_by_dropping_the_least_recently_used():
    sessions = MemorySessions(Clock(), limit=2)
    first, second = await sessions.open(OWNER, KEY), await sessions.open(OWNER, KEY)
    assert await sessions.get(first.id) is first  # now the most recently used
    third = await sessions.open(OWNER, KEY)
    assert await sessions.get(second.id) is None
    assert await sessions.get(first.id) is first and await sessions.get(third.id) is third


async def test_the_store_keeps_a_hash_of_the_cookie_and_neither_key_nor_cookie(store: Store):
    sessions = StoredSessions(store, Clock())
    session = await sessions.open(OWNER, KEY)
    assert "secret" not in repr(session)
    async with store.transaction() as db:
        rows = PortalSessions(db)
        assert await rows.get(session.id) is None  # the cookie's value is no row's key
        record = await rows.get(hashlib.sha256(session.id.encode()).hexdigest())
    assert record is not None and session.id not in repr(record)
    assert record.key_digest == hashlib.sha256(b"my-abc123def456-secret").hexdigest()
    assert OWNER.display_name == "key abc123def456 (owner)"
    assert OWNER.may_see_project("alpha") and not OWNER.may_see_project("beta")


async def test_sign_ins_prune_sessions_that_ended_without_a_sign_out(store: Store):
    clock = Clock()
    sessions = StoredSessions(store, clock, idle=IDLE, max_age=MAX_AGE)
    await sessions.open(OWNER, KEY)
    clock.now += IDLE
    await sessions.open(OWNER, KEY)
    async with store.transaction() as db:
        assert await PortalSessions(db).count() == 1


def test_sign_ins_from_an_address_are_refused_after_ten_failures_until_the_oldest_ages_out():
    clock = Clock()
    attempts = SignInAttempts(clock, limit=10, window=timedelta(minutes=15))
    for _ in range(9):
        attempts.failed("10.0.0.1")
        clock.now += timedelta(minutes=1)
    assert attempts.retry_after("10.0.0.1") is None  # nine: may still try
    attempts.failed("10.0.0.1")  # the tenth, at minute 9
    assert attempts.retry_after("10.0.0.1") == timedelta(minutes=6)  # the first is 9 min old
    assert attempts.retry_after("10.0.0.2") is None  # another address is not affected
    clock.now += timedelta(minutes=6)
    assert attempts.retry_after("10.0.0.1") is None  # the first aged out: one more try


def test_the_sign_in_form_refuses_an_address_after_ten_wrong_keys_even_with_a_right_one(
    admin: Admin,
):
    clock = Clock()
    assert admin.client.get("/portal/login").status_code == 200  # the portal is built at first use
    portal = admin.client.app.state.portal  # type: ignore[attr-defined]
    portal.sign_ins = SignInAttempts(clock)
    client = admin.client

    def attempt(key: str) -> Response:
        form = client.get("/portal/login")  # each answer sets a new double-submit token
        return client.post(
            "/portal/login", data={"csrf": csrf_of(form.text), "api_key": key},
            follow_redirects=False,
        )  # fmt: skip

    for i in range(10):
        assert attempt(f"my-wrong-{i}").status_code == 401
    refused = attempt(ADMIN_KEY)
    assert refused.status_code == 429 and "too many failed sign-ins" in refused.text
    assert refused.headers["retry-after"] == "900"
    clock.now += timedelta(minutes=15)
    assert attempt(ADMIN_KEY).status_code == 303


def test_a_store_that_fails_is_a_503_page_not_a_crash(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
):
    sign_in(admin.client, ADMIN_KEY)
    assert admin.client.get("/portal/catalog").status_code == 200

    async def broken(self: StoredSessions, session_id: str | None) -> None:
        raise StoreError("database error: disk I/O error")

    monkeypatch.setattr(StoredSessions, "get", broken)
    page = admin.client.get("/portal/catalog")
    assert page.status_code == 503 and "disk I/O error" in page.text
