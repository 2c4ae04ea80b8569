"""Portal sessions: random ids, idle expiry on an injected clock, a bounded table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard.portal.session import Sessions, user_of_key
from modelyard.tenancy.keys import Principal

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
