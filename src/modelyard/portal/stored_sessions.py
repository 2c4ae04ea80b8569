"""Portal sessions in the store (table ``portal_sessions``, revision 0018): a session made by
one worker or replica is honoured by every other, and ending it (sign-out, the key's revocation,
an operator ending a person's sessions) ends it everywhere at the browser's next request.

Why rows and not signed cookies: a session must be revocable, so every page would read a
revocation list in the store anyway, and a signed cookie would have to carry the ID token (a
kilobyte or more), the memberships and the CSRF token to every page; a random id costs the same
one primary-key read and keeps all of that on the server. The cookie's value is stored only as
its SHA-256 (``store/portal_sessions.py``). The idle clock is written at most once a minute, so
browsing costs a read per page, not a write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson

from modelyard.portal.session import (
    IDLE,
    MAX_AGE,
    Origin,
    Session,
    User,
    new_session,
    user_of_identity,
    user_of_key,
)
from modelyard.store import Store
from modelyard.store.portal_sessions import PortalSessions, SessionRecord
from modelyard.tenancy.keys import Principal, Role
from modelyard.tenancy.sso import Identity

TOUCH_EVERY = timedelta(minutes=1)  # the idle clock's resolution in the store


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _record(session: Session, project: str | None) -> SessionRecord:
    user, who = session.user, session.identity
    facts: dict[str, Any] = {}
    if who is not None:
        facts = {
            "issuer": who.issuer, "email": who.email, "name": who.name, "role": who.role,
            "projects": list(who.projects), "memberships": [list(m) for m in who.memberships],
        }  # fmt: skip
    return SessionRecord(
        _hash(session.id), session.csrf, "sso" if who is not None else "key",
        user.principal.key_id, session.key_digest.hex() if session.key_digest else None,
        who.subject if who is not None else None, user.display_name[:300], user.role,
        orjson.dumps(facts).decode(), project, session.id_token, session.last_seen,
        session.last_seen, session.expires_at,
    )  # fmt: skip


def _identity(record: SessionRecord) -> Identity:
    facts = orjson.loads(record.memberships)
    memberships = tuple((str(p), cast(Role, r)) for p, r in facts.get("memberships", ()))
    return Identity(
        str(facts.get("issuer", "")), str(record.subject), facts.get("email"),
        facts.get("name"), cast(Role, facts.get("role", record.role)),
        tuple(facts.get("projects", ())), memberships,
    )  # fmt: skip


def _session(session_id: str, record: SessionRecord) -> Session:
    """The session a row holds. A key session's user is provisional: the page re-reads the
    key's principal from the key ring (``web._live_session``)."""
    identity = None
    if record.kind == "sso":
        identity = _identity(record)
        user = user_of_identity(identity, record.project)
    else:
        role = cast(Role, record.role)
        user = user_of_key(Principal(key_id=record.key_id, role=role, project_id=record.project))
    return Session(
        session_id, user, record.csrf, _aware(record.last_seen), _aware(record.expires_at),
        bytes.fromhex(record.key_digest) if record.key_digest else None, identity,
        record.id_token,
    )  # fmt: skip


class StoredSessions:
    """``Sessions`` in the store; ``clock`` injected, ``idle`` and ``max_age`` from
    ``portal:`` in the config."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime] | None = None,
        idle: timedelta = IDLE,
        max_age: timedelta = MAX_AGE,
    ) -> None:
        self._store = store
        self._now = clock or (lambda: datetime.now(UTC))
        self._idle = idle
        self._max_age = max_age

    async def open(self, user: User, origin: Origin) -> Session:
        now = self._now()
        session = new_session(user, origin, now, self._max_age)
        async with self._store.transaction() as db:
            rows = PortalSessions(db)
            await rows.prune(now, now - self._idle)  # sign-ins keep the table small
            await rows.add(_record(session, user.principal.project_id))
        return session

    async def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        now = self._now()
        async with self._store.transaction() as db:
            rows = PortalSessions(db)
            record = await rows.get(_hash(session_id))
            if record is None:
                return None
            last_seen = _aware(record.last_seen)
            if now - last_seen >= self._idle or now >= _aware(record.expires_at):
                await rows.remove(record.id_hash)
                return None
            if now - last_seen >= TOUCH_EVERY:
                await rows.touch(record.id_hash, now, record.project)
        session = _session(session_id, record)
        session.last_seen = now
        return session

    async def close(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        async with self._store.transaction() as db:
            rows = PortalSessions(db)
            record = await rows.get(_hash(session_id))
            if record is None:
                return None
            await rows.remove(record.id_hash)
        return _session(session_id, record)

    async def act_in(self, session: Session, user: User) -> None:
        async with self._store.transaction() as db:
            await PortalSessions(db).touch(
                _hash(session.id), self._now(), user.principal.project_id
            )
        session.user = user

    async def end_all(self, *, subject: str | None = None, key_id: str | None = None) -> int:
        async with self._store.transaction() as db:
            return await PortalSessions(db).remove_of(subject=subject, key_id=key_id)
