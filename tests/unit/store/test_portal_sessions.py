"""Portal sessions in the store, on SQLite and on a real PostgreSQL: the times compared by the
database (idle expiry, lifetime, pruning) and the deletes that end a person's or a key's
sessions behave the same on both."""

from __future__ import annotations

from datetime import timedelta

from modelyard.portal.session import Origin, user_of_identity
from modelyard.portal.stored_sessions import StoredSessions
from modelyard.store import Store
from modelyard.store.portal_sessions import PortalSessions
from tests.unit.portal.test_sessions import DANA, IDLE, KEY, MAX_AGE, OWNER, Clock


async def test_expiry_revocation_and_pruning(store: Store):
    clock = Clock()
    sessions = StoredSessions(store, clock, idle=IDLE, max_age=MAX_AGE)
    by_key = await sessions.open(OWNER, KEY)
    dana = await sessions.open(user_of_identity(DANA), Origin(identity=DANA, id_token="a.b.c"))
    clock.now += IDLE - timedelta(seconds=1)
    assert await sessions.get(by_key.id) is not None  # touched: the idle clock restarts
    clock.now += timedelta(seconds=2)
    assert await sessions.get(dana.id) is None  # idle for IDLE + 1 s
    found = await sessions.get(by_key.id)
    assert found is not None and found.user.principal.project_id == "alpha"
    assert await sessions.end_all(key_id="abc123def456") == 1
    assert await sessions.get(by_key.id) is None
    for _ in range(3):
        await sessions.open(OWNER, KEY)
    clock.now += MAX_AGE  # each was used at its start only: idle and past its lifetime
    await sessions.open(user_of_identity(DANA), Origin(identity=DANA))  # prunes
    async with store.transaction() as db:
        assert await PortalSessions(db).count() == 1
    assert await sessions.end_all(subject="dana") == 1
