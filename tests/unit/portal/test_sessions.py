"""Portal sessions: random ids, idle expiry on an injected clock, a bounded table; the limit
on failed sign-ins per client address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from httpx2 import Response

from modelyard.portal.session import Sessions, SignInAttempts, user_of_key
from modelyard.tenancy.keys import Principal
from tests.unit.portal.conftest import ADMIN_KEY, Admin, csrf_of

OWNER = user_of_key(Principal(key_id="abc123def456", role="owner", project_id="alpha"))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_session_expires_after_being_idle_and_each_request_restarts_its_clock():
    clock = Clock()
    sessions = Sessions(clock, idle=timedelta(minutes=30))
    session = sessions.open(OWNER)
    clock.now += timedelta(minutes=29)
    assert sessions.get(session.id) is session  # restarts the idle clock
    clock.now += timedelta(minutes=29)
    assert sessions.get(session.id) is session
    clock.now += timedelta(minutes=30)
    assert sessions.get(session.id) is None
    assert len(sessions) == 0


def test_ids_and_csrf_tokens_are_random_and_unknown_ids_find_nothing():
    sessions = Sessions()
    a, b = sessions.open(OWNER), sessions.open(OWNER)
    assert len({a.id, b.id, a.csrf, b.csrf}) == 4
    assert min(len(a.id), len(a.csrf)) >= 40
    assert sessions.get("forged") is None and sessions.get(None) is None
    assert a.csrf_ok(a.csrf) and not a.csrf_ok(b.csrf) and not a.csrf_ok(None)


def test_the_table_is_bounded_by_dropping_the_least_recently_used():
    clock = Clock()
    sessions = Sessions(clock, limit=2)
    first, second = sessions.open(OWNER), sessions.open(OWNER)
    assert sessions.get(first.id) is first  # now the most recently used
    third = sessions.open(OWNER)
    assert sessions.get(second.id) is None
    assert sessions.get(first.id) is first and sessions.get(third.id) is third


def test_logout_closes_the_session_and_the_user_names_no_secret():
    sessions = Sessions()
    session = sessions.open(OWNER, api_key="my-abc123def456-secret")
    assert "secret" not in repr(session)
    assert OWNER.display_name == "key abc123def456 (owner)"
    assert OWNER.may_see_project("alpha") and not OWNER.may_see_project("beta")
    sessions.close(session.id)
    assert sessions.get(session.id) is None


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
