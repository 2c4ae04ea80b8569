"""Projects, keys and usage: the use cases behind the admin API and the CLI, with their roles.

Roles: ``operator`` may do everything; a project ``owner`` manages its project's keys and limits
and reads its usage; a ``member`` calls models and reads its own key's usage. Every check is made
here, so the admin API and the CLI cannot disagree.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard.config import Settings
from modelyard.core.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from modelyard.services.admin_fields import PROJECT_ID
from modelyard.store import Store, StoreError, VersionConflict
from modelyard.store.portal_sessions import PortalSessions
from modelyard.store.tenancy import Tenancy
from modelyard.store.ticks import Tick, every
from modelyard.store.usage import GroupBy, UsageLedger, UsageRecord
from modelyard.store.usage_series import Bucket, Point, RollupGroup, grouped, hourly, series
from modelyard.tenancy import grants
from modelyard.tenancy.keys import NO_LIMITS, ROLES, KeyRing, NewKey, Principal, new_key
from modelyard.tenancy.model import ApiKey, Limits, Project, UsageFilter

log = logging.getLogger("modelyard.tenancy")
ADMIN_KEY_ENV = "MODELYARD_ADMIN_KEY"


def bootstrap_keys(settings: Settings) -> list[tuple[str, Principal]]:
    """The operator key from ``MODELYARD_ADMIN_KEY`` and the config's ``server.api_keys``
    (members of no project: they call models and nothing else)."""
    keys = [
        (k.reveal(), Principal(key_id=f"config-{i}", role="member"))
        for i, k in enumerate(settings.server.api_keys)
    ]
    admin = os.environ.get(ADMIN_KEY_ENV)
    if admin:
        keys.append((admin, Principal(key_id="admin-env", role="operator")))
    return keys


async def load_keyring(store: Store, bootstrap: Sequence[tuple[str, Principal]]) -> KeyRing:
    async with store.transaction() as session:
        tenancy = Tenancy(session)
        return KeyRing(await tenancy.keys(), await tenancy.projects(), bootstrap)


async def tenancy_generation(store: Store) -> int:
    async with store.transaction() as session:
        return await Tenancy(session).generation()


class KeyRefresher:
    """Polls the store's tenancy generation and installs a new ``KeyRing`` when it moved.

    It polls every ``interval_s``, or whenever ``tick`` says (tests fire their own ticks)."""

    def __init__(
        self,
        store: Store,
        bootstrap: Callable[[], Sequence[tuple[str, Principal]]],
        install: Callable[[KeyRing], None],
        interval_s: float = 0.5,
        tick: Tick | None = None,
    ) -> None:
        self._store = store
        self._bootstrap = bootstrap
        self._install = install
        self._tick = tick or every(interval_s)
        self._seen = -1
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        # One refresh at a time, so an older ring is never installed over a newer one.
        self._lock = asyncio.Lock()
        self._begun = 0  # refreshes begun so far

    async def refresh(self, force: bool = False, *, share: bool = False) -> None:
        """Read the store's generation and install a new ring if it moved (or ``force``).

        ``share``: a refresh that began after this call arrived has read everything written
        before it arrived; when one has (it finished: this call holds the lock), this call
        has nothing left to do. Many requests that present a new key then cost one read."""
        arrived = self._begun
        async with self._lock:
            if share and self._begun > arrived:
                return
            self._begun += 1
            generation = await tenancy_generation(self._store)
            if generation != self._seen or force:
                self._install(await load_keyring(self._store, self._bootstrap()))
                self._seen = generation

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._tick(self._stop)
            if self._stop.is_set():
                return
            try:
                await self.refresh()
            except StoreError as exc:  # keep serving with the keys we have
                log.warning("key refresh failed, keeping the current keys: %s", exc)

    async def aclose(self) -> None:
        """Stop polling. A poll under way finishes first: cancelled inside its transaction, it
        could leave SQLite's write lock held and every other writer waiting."""
        self._stop.set()
        if self._task is not None:
            await self._task


@dataclass(frozen=True, slots=True)
class KeySpec:
    project_id: str | None
    role: str = "member"
    name: str | None = None
    deployments: tuple[str, ...] | None = None
    limits: Limits = NO_LIMITS
    expires_in: timedelta | None = None
    guardrails: str | None = None  # a policy name of the config, or "off"


def check_policy_name(name: str | None, known: Sequence[str]) -> None:
    """A guardrail policy attached by name must be one the config defines (or ``off``)."""
    if name is not None and name not in known:
        raise InvalidRequest(
            f"guardrails: no policy {name!r}; use one of: {', '.join(known)} (or null)",
            param="guardrails",
            code="invalid_value",
        )


def require_operator(principal: Principal) -> None:
    if principal.role != "operator":
        raise PermissionDenied("this needs the operator role", code="operator_only")


def require_project(principal: Principal, project_id: str, *, manage: bool) -> None:
    """Operators reach every project; owners their own; members only read their own usage."""
    if principal.role == "operator":
        return
    if principal.project_id != project_id:
        raise PermissionDenied(f"no access to project {project_id!r}", code="wrong_project")
    if manage and principal.role != "owner":
        raise PermissionDenied(
            f"managing project {project_id!r} needs its owner role", code="owner_only"
        )


def _expired(key: ApiKey, now: datetime) -> bool:
    expires = key.expires_at
    if expires is None:
        return False
    return (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) <= now


def _names(given: tuple[str, ...] | None, granted: frozenset[str] | None) -> tuple[str, ...] | None:
    """The deployments as the caller listed them, else the ones its bound gave (sorted)."""
    if given:
        return given
    return tuple(sorted(granted)) if granted is not None else None


class TenancyAdmin:
    def __init__(self, store: Store, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._now = clock or (lambda: datetime.now(UTC))

    async def create_project(
        self,
        principal: Principal,
        project_id: str,
        description: str | None,
        limits: Limits,
        guardrails: str | None = None,
    ) -> Project:
        require_operator(principal)
        if not PROJECT_ID.fullmatch(project_id):
            raise InvalidRequest(
                f"project id {project_id!r}: use 1-64 lowercase letters, digits, _ or -, "
                "starting with a letter or digit",
                param="id",
            )
        project = Project(project_id, description, limits, self._now(), guardrails)
        try:
            async with self._store.transaction() as session:
                await Tenancy(session).add_project(project)
        except VersionConflict as exc:
            raise InvalidRequest(
                f"project {project_id!r} already exists", param="id", code="project_exists"
            ) from exc
        return project

    async def projects(self, principal: Principal) -> list[Project]:
        async with self._store.transaction() as session:
            found = await Tenancy(session).projects()
        if principal.role == "operator":
            return found
        return [p for p in found if p.id == principal.project_id]

    async def project(self, principal: Principal, project_id: str) -> Project:
        require_project(principal, project_id, manage=False)
        async with self._store.transaction() as session:
            project = await Tenancy(session).project(project_id)
        if project is None:
            raise NotFound(f"no project {project_id!r}", code="project_not_found")
        return project

    async def set_project_limits(
        self, principal: Principal, project_id: str, limits: Limits
    ) -> Project:
        require_operator(principal)  # an owner may not lift its own project's limits
        async with self._store.transaction() as session:
            if not await Tenancy(session).set_project_limits(project_id, limits):
                raise NotFound(f"no project {project_id!r}", code="project_not_found")
        return await self.project(principal, project_id)

    async def set_project_guardrails(
        self, principal: Principal, project_id: str, policy: str | None
    ) -> Project:
        """Attach a policy to a project (``off``: none of the config's apply; None: detach)."""
        require_operator(principal)  # an owner may not lift its own project's policy
        async with self._store.transaction() as session:
            if not await Tenancy(session).set_project_guardrails(project_id, policy):
                raise NotFound(f"no project {project_id!r}", code="project_not_found")
        return await self.project(principal, project_id)

    async def create_key(self, principal: Principal, spec: KeySpec) -> tuple[ApiKey, NewKey]:
        if spec.role not in ROLES:
            raise InvalidRequest(
                f"role {spec.role!r}: must be one of {', '.join(ROLES)}", param="role"
            )
        if spec.role == "operator":
            require_operator(principal)
        elif spec.project_id is None:
            raise InvalidRequest("a key belongs to a project: give project", param="project")
        else:
            require_project(principal, spec.project_id, manage=True)
        now = self._now()
        own = await self._own_grant(principal, now)
        wanted = grants.bounded(
            own,
            grants.Grant(
                spec.role,
                spec.project_id if spec.role != "operator" else None,
                frozenset(spec.deployments) if spec.deployments else None,
                spec.limits,
                now + spec.expires_in if spec.expires_in else None,
            ),
        )
        grants.check(own, wanted)
        grants.guardrails_change(own.role, None, spec.guardrails)
        fresh = new_key()
        key = ApiKey(
            id=fresh.id,
            digest=fresh.digest,
            role=wanted.role,
            project_id=wanted.project_id,
            name=spec.name,
            deployments=_names(spec.deployments, wanted.deployments),
            limits=wanted.limits,
            expires_at=wanted.expires_at,
            revoked_at=None,
            created_at=now,
            guardrails=spec.guardrails,
        )
        async with self._store.transaction() as session:
            tenancy = Tenancy(session)
            if key.project_id is not None and await tenancy.project(key.project_id) is None:
                raise NotFound(f"no project {key.project_id!r}", code="project_not_found")
            await tenancy.add_key(key)
        return key, fresh

    async def _own_grant(self, principal: Principal, now: datetime) -> grants.Grant:
        """What the caller's key allows, as stored now: a key cache a poll behind must not
        let a key revoked or narrowed on another server grant what it no longer holds."""
        if principal.key_id is None:
            return grants.grant_of(principal)
        async with self._store.transaction() as session:
            stored = await Tenancy(session).key(principal.key_id)
        if stored is None:  # a bootstrap key (environment, config file, the CLI)
            return grants.grant_of(principal)
        if stored.revoked_at is not None or _expired(stored, now):
            raise AuthenticationFailed(
                f"API key {stored.id} was revoked or has expired", code="revoked_api_key"
            )
        return grants.grant_of_key(stored)

    async def keys(self, principal: Principal, project_id: str | None) -> list[ApiKey]:
        if project_id is None:
            require_operator(principal)
        else:
            require_project(principal, project_id, manage=True)
        async with self._store.transaction() as session:
            return await Tenancy(session).keys(project_id)

    async def _key_to_manage(self, principal: Principal, key_id: str) -> ApiKey:
        async with self._store.transaction() as session:
            key = await Tenancy(session).key(key_id)
        if key is None:
            raise NotFound(f"no key {key_id!r}", code="key_not_found")
        if key.project_id is None:
            require_operator(principal)
        else:
            require_project(principal, key.project_id, manage=True)
        return key

    async def key(self, principal: Principal, key_id: str) -> ApiKey:
        """One key the caller may manage (404 when there is none, 403 when not theirs)."""
        return await self._key_to_manage(principal, key_id)

    async def revoke_key(self, principal: Principal, key_id: str) -> ApiKey:
        await self._key_to_manage(principal, key_id)
        async with self._store.transaction() as session:
            await Tenancy(session).revoke_key(key_id, self._now())
            await PortalSessions(session).remove_of(key_id=key_id)  # signed out everywhere
            key = await Tenancy(session).key(key_id)
        assert key is not None
        return key

    async def set_key_limits(self, principal: Principal, key_id: str, limits: Limits) -> ApiKey:
        before = grants.grant_of_key(await self._key_to_manage(principal, key_id))
        own = await self._own_grant(principal, self._now())
        grants.check(own, replace(before, limits=limits), before)
        async with self._store.transaction() as session:
            await Tenancy(session).set_key_limits(key_id, limits)
            key = await Tenancy(session).key(key_id)
        assert key is not None
        return key

    async def update_key(
        self, principal: Principal, key_id: str, limits: Limits, policy: str | None
    ) -> ApiKey:
        """A key's limits and guardrail policy (``off``: no guards; None: detached), both
        checked (``grants``) before either is written, in one transaction."""
        before = await self._key_to_manage(principal, key_id)
        own = await self._own_grant(principal, self._now())
        was = grants.grant_of_key(before)
        grants.check(own, replace(was, limits=limits), was)
        grants.guardrails_change(own.role, before.guardrails, policy)
        async with self._store.transaction() as session:
            tenancy = Tenancy(session)
            await tenancy.set_key_limits(key_id, limits)
            if policy != before.guardrails:
                await tenancy.set_key_guardrails(key_id, policy)
            key = await tenancy.key(key_id)
        assert key is not None
        return key

    def _usage_filter(self, principal: Principal, where: UsageFilter) -> UsageFilter:
        """Narrow a usage query to what ``principal`` may see."""
        if principal.role == "operator":
            return where
        if where.project_id not in (None, principal.project_id):
            raise PermissionDenied(f"no access to project {where.project_id!r}")
        key_id = where.key_id
        if principal.role == "member":
            if key_id not in (None, principal.key_id):
                raise PermissionDenied("a member sees only its own key's usage")
            key_id = principal.key_id
        return UsageFilter(
            principal.project_id,
            key_id,
            where.deployment,
            where.since,
            where.until,
            where.guardrail,
        )

    async def usage(
        self, principal: Principal, by: GroupBy, where: UsageFilter
    ) -> list[dict[str, Any]]:
        narrowed = self._usage_filter(principal, where)
        async with self._store.transaction() as session:
            return await UsageLedger(session).grouped(by, narrowed)

    async def usage_steps(
        self, principal: Principal, parent_id: str, limit: int = 1000
    ) -> list[UsageRecord]:
        """The ledger rows of one request's steps (a response's model calls and tool runs),
        as far as ``principal`` may see usage."""
        narrowed = self._usage_filter(principal, UsageFilter())
        async with self._store.transaction() as session:
            return await UsageLedger(session).steps(parent_id, narrowed, limit)

    async def usage_totals(
        self, principal: Principal, by: RollupGroup, where: UsageFilter
    ) -> list[dict[str, Any]]:
        """``usage`` from the hourly rollup (the portal's pages): the same totals over the
        whole hours the range touches, read from hours x groups rows, not the ledger's."""
        narrowed = self._usage_filter(principal, where)
        async with self._store.transaction() as session:
            return await grouped(session, by, narrowed)

    async def usage_series(
        self, principal: Principal, bucket: Bucket, where: UsageFilter
    ) -> list[Point]:
        """The hourly rollup per hour or day (the portal's charts), narrowed like ``usage``."""
        narrowed = self._usage_filter(principal, where)
        async with self._store.transaction() as session:
            return await series(session, bucket, narrowed)

    async def usage_hours(
        self, principal: Principal, where: UsageFilter, limit: int
    ) -> list[tuple[Any, ...]]:
        """The rollup's hours per project, key, deployment and model (the portal's CSV),
        narrowed like ``usage``: ``store.usage_series.HOURLY_FIELDS`` each."""
        narrowed = self._usage_filter(principal, where)
        async with self._store.transaction() as session:
            return await hourly(session, narrowed, limit)

    async def usage_records(
        self, principal: Principal, where: UsageFilter, limit: int = 10_000
    ) -> list[UsageRecord]:
        narrowed = self._usage_filter(principal, where)
        async with self._store.transaction() as session:
            return await UsageLedger(session).records(narrowed, limit)
