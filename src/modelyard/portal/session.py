"""Who is signed in to the portal: the ``User`` (a role, the project acted in, a display name)
and the ``Sessions`` that hold them behind a random cookie.

A user is what the portal's pages ask about; how they signed in is not their business. A user
comes from an API key (``user_of_key``) or from single sign-on (``user_of_identity``: the
provider's claims mapped to a role and memberships); a person with several projects acts in
one at a time and switches between them. Every action is still checked by the service layer
against ``principal`` (``services.tenancy``), the same ``Principal`` the admin API passes, so
the portal can show less than the API allows but never do more.

Two homes for sessions, one protocol: ``StoredSessions`` (``stored_sessions.py``) keeps them in
the store, so every worker and replica honours a session and a sign-out or revocation ends it
everywhere; ``MemorySessions`` keeps them in this process (a server without a store: tests,
embedding). A key session keeps the key's id and SHA-256 digest, never the key: every page
re-checks it against the key ring, so a revoked or expired key ends its sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from modelyard.tenancy.keys import Principal, Role
from modelyard.tenancy.sso import Identity

COOKIE = "modelyard_portal"
IDLE = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)
MAX_SESSIONS = 10_000  # the oldest idle session is dropped beyond this (in memory)
MAX_FAILED_SIGN_INS = 10  # per client address within SIGN_IN_WINDOW; then 429 until one ages out
SIGN_IN_WINDOW = timedelta(minutes=15)
MAX_ADDRESSES = 10_000  # addresses with recent failures kept; the least recent dropped beyond


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in person as the pages see them."""

    display_name: str
    role: Role
    projects: tuple[str, ...]  # the project acted in; empty for an operator: every project
    principal: Principal  # what the service layer checks every action against
    choices: tuple[str, ...] = ()  # the projects they may switch to (SSO with several)

    @property
    def operator(self) -> bool:
        return self.role == "operator"

    @property
    def manages_keys(self) -> bool:
        return self.role in ("operator", "owner")

    def may_see_project(self, project_id: str | None) -> bool:
        return self.operator or (project_id is not None and project_id in self.projects)


def user_of_key(principal: Principal) -> User:
    """The user behind an API key (its id is its name: the secret never is)."""
    name = f"key {principal.key_id}" if principal.key_id else "bootstrap key"
    projects = (principal.project_id,) if principal.project_id else ()
    return User(f"{name} ({principal.role})", principal.role, projects, principal)


def user_of_identity(identity: Identity, project: str | None = None) -> User:
    """The user behind a single sign-on identity, acting in ``project`` (None: their first;
    one they are no member of: 403)."""
    principal = identity.principal(project)
    name = identity.name or identity.email or identity.subject
    projects = (principal.project_id,) if principal.project_id else ()
    return User(f"{name} ({principal.role})", principal.role, projects, principal, identity.choices)


@dataclass(slots=True)
class Session:
    id: str
    user: User
    csrf: str
    last_seen: datetime
    expires_at: datetime
    # How the user signed in, re-checked on every page: a key by its id and SHA-256 digest
    # (the key itself is never kept), or a person through single sign-on (their identity and
    # the ID token the provider wants back at sign-out).
    key_digest: bytes | None = field(default=None, repr=False)
    identity: Identity | None = None
    id_token: str | None = field(default=None, repr=False)

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


@dataclass(frozen=True, slots=True)
class Origin:
    """How a session was signed in: ``key_digest`` (a key) or ``identity`` (single sign-on)."""

    key_digest: bytes | None = None
    identity: Identity | None = None
    id_token: str | None = None

    @classmethod
    def of_key(cls, key: str) -> Origin:
        return cls(key_digest=hashlib.sha256(key.encode()).digest())


class Sessions(Protocol):
    """Where sessions live (memory or the store); every method is one short operation."""

    async def open(self, user: User, origin: Origin) -> Session:
        """A new session for ``user``: random id and CSRF token."""
        ...

    async def get(self, session_id: str | None) -> Session | None:
        """The live session of that id, its idle clock restarted; None if none or expired."""
        ...

    async def close(self, session_id: str | None) -> Session | None:
        """End the session; what it was (for its ID token), if it existed."""
        ...

    async def act_in(self, session: Session, user: User) -> None:
        """The session's user now acts as ``user`` (another project)."""
        ...

    async def end_all(self, *, subject: str | None = None, key_id: str | None = None) -> int:
        """End every session of a person or of a key; how many."""
        ...


def new_session(user: User, origin: Origin, now: datetime, max_age: timedelta) -> Session:
    return Session(
        secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now, now + max_age,
        origin.key_digest, origin.identity, origin.id_token,
    )  # fmt: skip


class MemorySessions:
    """Sessions in this process by random id, dropped after ``idle`` without a request or
    ``max_age`` after sign-in (``clock``: injected)."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        idle: timedelta = IDLE,
        limit: int = MAX_SESSIONS,
        max_age: timedelta = MAX_AGE,
    ) -> None:
        self._now = clock or (lambda: datetime.now(UTC))
        self._idle = idle
        self._max_age = max_age
        self._limit = limit
        self._by_id: OrderedDict[str, Session] = OrderedDict()  # least recently used first

    async def open(self, user: User, origin: Origin) -> Session:
        while len(self._by_id) >= self._limit:
            self._by_id.popitem(last=False)
        session = new_session(user, origin, self._now(), self._max_age)
        self._by_id[session.id] = session
        return session

    async def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        now = self._now()
        if now - session.last_seen >= self._idle or now >= session.expires_at:
            del self._by_id[session_id]
            return None
        session.last_seen = now
        self._by_id.move_to_end(session_id)
        return session

    async def close(self, session_id: str | None) -> Session | None:
        return self._by_id.pop(session_id, None) if session_id else None

    async def act_in(self, session: Session, user: User) -> None:
        session.user = user

    async def end_all(self, *, subject: str | None = None, key_id: str | None = None) -> int:
        ended = [
            sid
            for sid, s in self._by_id.items()
            if (subject is not None and s.identity is not None and s.identity.subject == subject)
            or (key_id is not None and s.user.principal.key_id == key_id)
        ]
        for sid in ended:
            del self._by_id[sid]
        return len(ended)

    def __len__(self) -> int:
        return len(self._by_id)


class SignInAttempts:
    """Failed sign-ins per client address: after ``limit`` within ``window`` the address is
    refused (without the key being checked) until the oldest of them is ``window`` old, so
    guessing keys through the form runs at ``limit`` per ``window``. A success does not clear
    the count (a key of one's own must not buy more guesses at others'). Kept per process,
    like the sessions; behind a proxy every browser has the proxy's address."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        limit: int = MAX_FAILED_SIGN_INS,
        window: timedelta = SIGN_IN_WINDOW,
    ) -> None:
        self._now = clock or (lambda: datetime.now(UTC))
        self._limit = limit
        self._window = window
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def retry_after(self, address: str) -> timedelta | None:
        """How long ``address`` must wait before its next attempt; None: it may try now."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        now = self._now()
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        if len(failures) < self._limit:
            return None
        return failures[0] + self._window - now

    def failed(self, address: str) -> None:
        failures = self._failures.get(address)
        if failures is None:
            while len(self._failures) >= MAX_ADDRESSES:
                self._failures.popitem(last=False)
            failures = self._failures[address] = deque(maxlen=self._limit)
        failures.append(self._now())
        self._failures.move_to_end(address)
