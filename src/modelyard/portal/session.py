"""Who is signed in to the portal: the ``User`` (a role, projects, a display name) and the
server-side ``Sessions`` that hold them behind a random cookie.

A user is what the portal's pages ask about; how they signed in is not their business. Today a
user comes from an API key (``user_of_key``); single sign-on makes one from an identity
provider's claims the same way, and nothing else changes. Every action is still checked by the
service layer against ``principal`` (``services.tenancy``), the same ``Principal`` the admin API
passes, so the portal can show less than the API allows but never do more.

Sessions live in this process's memory: a session is created and read by the worker that
serves the browser, holds nothing the store must survive (signing in again is the recovery),
and costs no query per page. Behind several workers or replicas a browser must stick to one,
until the scale-out work moves sessions to the shared store (see ``docs/portal.md``).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modelyard.tenancy.keys import Principal, Role

COOKIE = "modelyard_portal"
IDLE = timedelta(minutes=30)
MAX_SESSIONS = 10_000  # the oldest idle session is dropped beyond this
MAX_FAILED_SIGN_INS = 10  # per client address within SIGN_IN_WINDOW; then 429 until one ages out
SIGN_IN_WINDOW = timedelta(minutes=15)
MAX_ADDRESSES = 10_000  # addresses with recent failures kept; the least recent dropped beyond


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in person as the pages see them."""

    display_name: str
    role: Role
    projects: tuple[str, ...]  # empty for an operator: every project
    principal: Principal  # what the service layer checks every action against

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


@dataclass(slots=True)
class Session:
    id: str
    user: User
    csrf: str
    last_seen: datetime
    # How the user signed in, re-checked on every page so a revoked key ends its sessions:
    # the key (kept in this process's memory only, never in a cookie or a log) or None (SSO).
    api_key: str | None = field(default=None, repr=False)

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class Sessions:
    """Sessions by random id, dropped after ``idle`` without a request (``clock``: injected)."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        idle: timedelta = IDLE,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self._now = clock or (lambda: datetime.now(UTC))
        self._idle = idle
        self._limit = limit
        self._by_id: OrderedDict[str, Session] = OrderedDict()  # least recently used first

    def open(self, user: User, api_key: str | None = None) -> Session:
        while len(self._by_id) >= self._limit:
            self._by_id.popitem(last=False)
        session = Session(
            secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), self._now(), api_key
        )
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id, its idle clock restarted; None if none or expired."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        now = self._now()
        if now - session.last_seen >= self._idle:
            del self._by_id[session_id]
            return None
        session.last_seen = now
        self._by_id.move_to_end(session_id)
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)

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
