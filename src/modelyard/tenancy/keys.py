"""API keys: ``my-<id>-<secret>``, shown once, kept only as a SHA-256 digest.

The ``<id>`` part is not secret: it finds the key's record in memory in O(1); the whole key's
digest is then compared in constant time. The record cache (``KeyRing``) is rebuilt whenever
the store's tenancy generation moves, so no request waits on the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from modelyard.core.errors import AuthenticationFailed, PermissionDenied
from modelyard.tenancy.limits import Scope
from modelyard.tenancy.model import ApiKey, Limits, Project

Role = Literal["operator", "owner", "member"]
ROLES: tuple[Role, ...] = ("operator", "owner", "member")
PREFIX = "my"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_HEAD = f"{PREFIX}-"
_ID_AT, _ID_END = len(_HEAD), len(_HEAD) + 12  # where a key's id sits: my-<12 characters>-
NO_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``anonymous``: no keys exist at all (loopback-only open mode)."""

    key_id: str | None
    anonymous: bool = False
    role: Role = "member"
    project_id: str | None = None
    deployments: frozenset[str] | None = None  # None: every deployment
    key_limits: Limits = NO_LIMITS
    project_limits: Limits = NO_LIMITS
    # What the limiter checks, built once per key (not per request): key first, then project.
    scopes: tuple[Scope, ...] = ()
    budgeted: bool = False  # any scope has a budget: requests need a cost estimate
    expires_at: datetime | None = None  # a key it creates may not outlive it
    # The guardrail policies the admin API attached to the key and to its project (a name or
    # "off"; None: none), carried here so choosing a call's policy reads no store.
    key_guardrails: str | None = None
    project_guardrails: str | None = None
    # A person signed in through single sign-on (``<issuer>#<subject>`` is not needed: one
    # issuer per server), else None: a key.
    user: str | None = None

    def may_call(self, deployment: str) -> None:
        if self.deployments is not None and deployment not in self.deployments:
            raise PermissionDenied(
                f"key {self.key_id} may not call deployment {deployment!r}; "
                f"it may call: {', '.join(sorted(self.deployments))}",
                code="deployment_not_allowed",
            )


def scopes_of(
    key_id: str | None, key: Limits, project_id: str | None, project: Limits
) -> tuple[Scope, ...]:
    found = []
    if key_id and key != NO_LIMITS:
        found.append(_scope(f"key:{key_id}", key))
    if project_id and project != NO_LIMITS:
        found.append(_scope(f"project:{project_id}", project))
    return tuple(found)


def _scope(name: str, limits: Limits) -> Scope:
    return Scope(
        name, limits.rpm, limits.tpm, limits.daily_budget_micros, limits.monthly_budget_micros
    )


ANONYMOUS = Principal(key_id=None, anonymous=True, role="operator")


@dataclass(frozen=True, slots=True)
class NewKey:
    id: str
    secret: str  # the whole key, shown once

    @property
    def digest(self) -> str:
        return digest_of(self.secret)


def new_key() -> NewKey:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    return NewKey(key_id, f"{PREFIX}-{key_id}-{secrets.token_urlsafe(32)}")


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(presented: str) -> str | None:
    """The part of ``presented`` where a key's id sits, if it has the shape ``my-<id>-…``.

    Only the shape around the id is checked (a regular expression costs more than the whole
    lookup): only the stored key's own digest can match what was presented."""
    well_placed = presented.startswith(_HEAD) and presented[_ID_END : _ID_END + 1] == "-"
    return presented[_ID_AT:_ID_END] if well_placed else None


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    principal: Principal
    expires_at: datetime | None
    revoked: bool


class KeyRing:
    """Keys from the store (by id) plus bootstrap keys (operator from the environment, and the
    config file's ``server.api_keys``, members of no project), matched by digest."""

    def __init__(
        self,
        keys: Iterable[ApiKey] = (),
        projects: Iterable[Project] = (),
        bootstrap: Iterable[tuple[str, Principal]] = (),
    ) -> None:
        by_project = {p.id: p for p in projects}
        self._entries: dict[str, _Entry] = {}
        for key in keys:
            project = by_project.get(key.project_id or "")
            project_limits = project.limits if project else NO_LIMITS
            scopes = scopes_of(key.id, key.limits, key.project_id, project_limits)
            principal = Principal(
                key_id=key.id,
                role=key.role if key.role in ROLES else "member",
                project_id=key.project_id,
                deployments=frozenset(key.deployments) if key.deployments else None,
                key_limits=key.limits,
                project_limits=project_limits,
                scopes=scopes,
                budgeted=any(
                    s.daily_budget_micros is not None or s.monthly_budget_micros is not None
                    for s in scopes
                ),
                expires_at=key.expires_at,
                key_guardrails=key.guardrails,
                project_guardrails=project.guardrails if project else None,
            )
            self._entries[key.id] = _Entry(
                bytes.fromhex(key.digest), principal, key.expires_at, key.revoked_at is not None
            )
        self._bootstrap = [(hashlib.sha256(k.encode()).digest(), p) for k, p in bootstrap]
        self.stored = len(self._entries)
        # Once any key exists, every request needs one. (A ring never changes: a new one is
        # built when the keys do, so this is worked out once, not on every request.)
        self.enabled = bool(self._entries or self._bootstrap)

    def authenticate(
        self, presented: str | None, now: datetime | None = None, *, may_look_up: bool = False
    ) -> Principal:
        """The principal of ``presented``. With ``may_look_up``, a key of our shape that this
        ring does not hold raises ``UnknownKey``: it may have been created since the ring was
        built, and the caller looks in the store before refusing it (or, on a server without
        keys, before serving it as anonymous, without its limits)."""
        if not self.enabled:
            if may_look_up and presented and key_id_of(presented):
                raise UnknownKey()
            return ANONYMOUS
        if not presented:
            raise AuthenticationFailed(
                "no API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        digest = hashlib.sha256(presented.encode()).digest()
        key_id = key_id_of(presented)
        entry = self._entries.get(key_id) if key_id else None
        if entry is not None and hmac.compare_digest(digest, entry.digest):
            return _usable(entry, key_id, now)
        found = self._bootstrap_key(digest)
        if found is None:
            if may_look_up and key_id is not None and entry is None:
                raise UnknownKey()
            raise AuthenticationFailed("invalid API key", code="invalid_api_key")
        return found

    def _bootstrap_key(self, digest: bytes) -> Principal | None:
        """The bootstrap key whose SHA-256 is ``digest``, compared against every one so the
        time taken says nothing about which one."""
        found: Principal | None = None
        for known, principal in self._bootstrap:
            if hmac.compare_digest(digest, known):
                found = principal
        return found

    def by_digest(
        self, key_id: str | None, digest: bytes, now: datetime | None = None
    ) -> Principal:
        """The principal of the key whose SHA-256 is ``digest`` (a portal session signed in
        with it keeps the digest, never the key), with the same revocation and expiry checks as
        ``authenticate``. A stored key's id this ring does not hold raises ``UnknownKey``."""
        entry = self._entries.get(key_id) if key_id else None
        if entry is not None and hmac.compare_digest(digest, entry.digest):
            return _usable(entry, key_id, now)
        found = self._bootstrap_key(digest)
        if found is not None:
            return found
        if entry is None and key_id and all(p.key_id != key_id for _, p in self._bootstrap):
            raise UnknownKey()
        raise AuthenticationFailed("invalid API key", code="invalid_api_key")


class UnknownKey(AuthenticationFailed):
    """A key of our shape that the ring does not hold (yet): look in the store, then ask again.
    Unhandled, it is the same 401 as any invalid key."""

    def __init__(self) -> None:
        super().__init__("invalid API key", code="invalid_api_key")


def _usable(entry: _Entry, key_id: str | None, now: datetime | None) -> Principal:
    """The principal of a key whose digest matched, unless it is revoked or expired."""
    if entry.revoked:
        raise AuthenticationFailed(f"API key {key_id} was revoked", code="revoked_api_key")
    if entry.expires_at is not None and (now or datetime.now(UTC)) >= _aware(entry.expires_at):
        raise AuthenticationFailed(f"API key {key_id} has expired", code="expired_api_key")
    return entry.principal


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def bearer_token(authorization: str | None, api_key_header: str | None) -> str | None:
    """The key from ``Authorization: Bearer`` or the ``x-api-key`` header some SDKs use."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if token and scheme.lower() == "bearer":
            return token
    return api_key_header or None
