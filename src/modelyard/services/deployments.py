"""Deployment versions: every change to a deployment is a numbered version that can be listed
and rolled back.

Semantics:

- ``sync_versions`` runs at server startup and at every reload. For each deployment in the
  config it computes the canonical spec (targets, strategy, retry, sticky header, description as
  sorted JSON) and records a new version with source ``config`` when it differs from the latest
  version recorded with source ``config``. Unchanged deployments record nothing.
- ``rollback(name, N)`` records a new version whose spec is version N's, with source
  ``rollback:N``. While the config's own spec for that deployment stays what it was at the
  rollback, the newest version is the rollback and its spec is served (an override of the
  config). When the operator edits that deployment in the config, the edit is a new ``config``
  version and the config wins again.
- ``change(name, spec, what)`` (the portal's re-point and new weights) records a new version
  with source ``change:<what>``, served exactly like a rollback: until the config's own spec
  of that deployment changes. A client keeps calling the deployment by its name.
- A rolled-back spec naming a provider the config no longer has is not served (logged); the
  config's own spec serves instead. ``rollback`` refuses such a version up front.
- Concurrent gateway workers starting at once each read-then-append in one transaction; the
  unique (name, version) constraint rejects the loser, which re-reads and finds nothing to do.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Final, TypeVar

from pydantic import ValidationError

from modelyard.config import Settings
from modelyard.config.schema import DeploymentConfig
from modelyard.core.errors import InvalidRequest, NotFound
from modelyard.store import Store, VersionConflict
from modelyard.store.deployment_versions import DeploymentVersion, DeploymentVersions, NewVersion

log = logging.getLogger("modelyard.deployments")
CONFIG_SOURCE = "config"
ROLLBACK_PREFIX = "rollback:"
CHANGE_PREFIX = "change:"
# Recorded versions that override the config's own spec while it stays unchanged.
_SERVED_PREFIXES = (ROLLBACK_PREFIX, CHANGE_PREFIX)
_ATTEMPTS = 8
T = TypeVar("T")


# Fields added to deployments after versions were first recorded, with their defaults: left out
# of the spec while at their default, so an upgrade does not record a new version of every
# unchanged deployment.
_ADDED_LATER: Final[Mapping[str, object]] = MappingProxyType(
    {"shadow": None, "hosted_tools": "omit"}
)


def canonical_spec(cfg: DeploymentConfig) -> str:
    """The deployment as configured, as JSON that is equal exactly when the specs are."""
    data = cfg.model_dump(mode="json")
    for key, default in _ADDED_LATER.items():
        if data.get(key) == default:
            data.pop(key, None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def spec_hash(spec: str) -> str:
    return hashlib.sha256(spec.encode()).hexdigest()


def spec_of(version: DeploymentVersion) -> DeploymentConfig | None:
    """The recorded spec; None when it no longer fits the schema (a later release changed it)."""
    try:
        return DeploymentConfig.model_validate_json(version.spec)
    except ValidationError:
        return None


def summary(version: DeploymentVersion) -> str:
    """One line naming the targets, e.g. ``failover: fake/gpt-4o, backup/llama``."""
    cfg = spec_of(version)
    if cfg is None:
        return "(a spec this release can no longer read)"
    return f"{cfg.strategy}: " + ", ".join(f"{t.provider}/{t.model}" for t in cfg.targets)


def known_providers(settings: Settings) -> set[str]:
    return set(settings.providers) | ({"local"} if settings.local.enabled else set())


async def sync_versions(store: Store, settings: Settings) -> dict[str, DeploymentConfig]:
    """Record changed deployments; return the rolled-back specs to serve instead of the config's."""
    overrides: dict[str, DeploymentConfig] = {}
    known = known_providers(settings)
    for name, cfg in settings.deployments.items():
        live = await _retrying(functools.partial(_sync_one, store, name, cfg))
        if live is None:
            continue
        missing = {t.provider for t in live.targets} - known
        if missing:
            log.warning(
                "deployment %s: the rolled-back spec names providers no longer configured (%s); "
                "serving the config's spec",
                name,
                ", ".join(sorted(missing)),
            )
            continue
        overrides[name] = live
    return overrides


async def _sync_one(store: Store, name: str, cfg: DeploymentConfig) -> DeploymentConfig | None:
    spec = canonical_spec(cfg)
    digest = spec_hash(spec)
    async with store.transaction() as session:
        repo = DeploymentVersions(session)
        # Newest first: an append racing these reads then conflicts on newest + 1 (see append).
        newest = await repo.latest(name)
        from_config = await repo.latest(name, CONFIG_SOURCE)
        if from_config is None or from_config.spec_hash != digest:
            new = NewVersion(name, spec, digest, CONFIG_SOURCE)
            added = await repo.append(new, newest.version if newest else 0)
            log.info("deployment %s: recorded version %d from the config", name, added.version)
            return None
    # A config version read after ``newest`` may be newer than it (a racing worker): it wins.
    if newest is None or newest.version < from_config.version:
        return None
    if not newest.source.startswith(_SERVED_PREFIXES):
        return None
    rolled_back = spec_of(newest)
    if rolled_back is None:
        log.warning(
            "deployment %s: version %d is unreadable; serving the config", name, newest.version
        )
    return rolled_back


async def served_overrides(store: Store, settings: Settings) -> dict[str, DeploymentConfig]:
    """What ``sync_versions`` returns, recording nothing: for a replica following a change made
    elsewhere. It must not record its own config's versions there: two replicas whose config
    files differ would each record theirs on hearing of the other's, and take turns forever.
    A deployment whose recorded config differs from this replica's config serves its config."""
    overrides: dict[str, DeploymentConfig] = {}
    known = known_providers(settings)
    async with store.transaction() as session:
        repo = DeploymentVersions(session)
        for name, cfg in settings.deployments.items():
            newest = await repo.latest(name)
            from_config = await repo.latest(name, CONFIG_SOURCE)
            if newest is None or from_config is None or newest.version < from_config.version:
                continue
            if from_config.spec_hash != spec_hash(canonical_spec(cfg)):
                continue
            if not newest.source.startswith(_SERVED_PREFIXES):  # rollbacks and changes
                continue
            spec = spec_of(newest)
            if spec is not None and not {t.provider for t in spec.targets} - known:
                overrides[name] = spec
    return overrides


async def versions_head(store: Store) -> int:
    async with store.transaction() as session:
        return await DeploymentVersions(session).head()


async def history(store: Store, name: str) -> list[DeploymentVersion]:
    async with store.transaction() as session:
        return await DeploymentVersions(session).history(name)


async def rollback(store: Store, settings: Settings, name: str, version: int) -> DeploymentVersion:
    """Record version ``version``'s spec as the newest version of ``name``."""
    if name not in settings.deployments:
        raise NotFound(f"no deployment {name!r} in the config")

    async def record() -> DeploymentVersion:
        async with store.transaction() as session:
            repo = DeploymentVersions(session)
            newest = await repo.latest(name)
            target = await repo.get(name, version)
            if target is None:
                known = f"1..{newest.version}" if newest else "none recorded yet"
                raise NotFound(f"deployment {name!r} has no version {version} (versions: {known})")
            spec = spec_of(target)
            if spec is None:
                raise InvalidRequest(f"version {version} of {name!r} is unreadable by this release")
            missing = {t.provider for t in spec.targets} - known_providers(settings)
            if missing:
                raise InvalidRequest(
                    f"version {version} of {name!r} names providers no longer configured: "
                    + ", ".join(sorted(missing))
                )
            new = NewVersion(name, target.spec, target.spec_hash, f"{ROLLBACK_PREFIX}{version}")
            return await repo.append(new, newest.version if newest else 0)

    return await _retrying(record)


async def change(
    store: Store, settings: Settings, name: str, spec: DeploymentConfig, what: str
) -> DeploymentVersion:
    """Record ``spec`` as the newest version of ``name`` with source ``change:<what>`` (a
    re-point to another model, new weights): the same kind of versioned change as a rollback,
    which can itself be rolled back."""
    if name not in settings.deployments:
        raise NotFound(f"no deployment {name!r} in the config")
    missing = {t.provider for t in spec.targets} - known_providers(settings)
    if missing:
        raise InvalidRequest(
            f"targets: no provider {sorted(missing)[0]!r} in the config", param="targets"
        )
    text = canonical_spec(spec)
    digest = spec_hash(text)
    source = f"{CHANGE_PREFIX}{what}"[:32]

    async def record() -> DeploymentVersion:
        async with store.transaction() as session:
            repo = DeploymentVersions(session)
            newest = await repo.latest(name)
            if newest is not None and newest.spec_hash == digest:
                raise InvalidRequest(
                    f"{name!r} already serves this spec (version {newest.version})",
                    code="no_change",
                )
            new = NewVersion(name, text, digest, source)
            return await repo.append(new, newest.version if newest else 0)

    return await _retrying(record)


async def _retrying(work: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(_ATTEMPTS):
        try:
            return await work()
        except VersionConflict:
            if attempt == _ATTEMPTS - 1:
                raise
            # Jitter so racing workers do not collide again on the next number.
            await asyncio.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # noqa: S311
    raise AssertionError("unreachable")
