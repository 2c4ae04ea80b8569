"""Named, versioned agents: recorded like deployments, resolved for the Responses API.

Semantics (the same as deployment versions, ``services/deployments.py``, plus a live pointer):

- ``sync`` runs at start-up and at every reload. An agent of the config whose spec differs
  from the newest version recorded from the config gets a new version (source ``config``)
  and that version goes live. An unchanged config agent keeps whatever version is live, so a
  version made or chosen through the admin API survives restarts until the operator edits the
  agent in the config. A config agent gone from the config is no longer served (its versions
  stay, for history).
- The admin API records versions (source ``api``; live at once unless asked not to), sets the
  live version, rolls back (to a given version, or the newest one below the live one) and
  deletes agents it created; an agent of the config is deleted by removing it from the config.
- Resolving reads the store (two indexed reads) for each agent request: every worker sees a
  change at once, and a request that names no agent pays nothing. Without a store, the
  config's agents are served as version 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from modelyard.agents.definitions import AgentDef, AgentRef, expand, names_agent, reference_of
from modelyard.config import Settings
from modelyard.config.agents import AgentConfig
from modelyard.core.errors import InvalidRequest, NotFound
from modelyard.services.deployments import _retrying
from modelyard.store import Store
from modelyard.store.agents import AgentHead, Agents, AgentVersion

CONFIG = "config"
API = "api"


def canonical(cfg: AgentConfig) -> str:
    return json.dumps(
        cfg.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":")
    )


def _hash(spec: str) -> str:
    return hashlib.sha256(spec.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An agent as the admin API and the CLI show it."""

    name: str
    origin: str
    live_version: int
    versions: list[AgentVersion]

    @property
    def live(self) -> AgentVersion | None:
        return next((v for v in self.versions if v.version == self.live_version), None)


class AgentBook:
    """The agents' use cases over the store (None: config agents only)."""

    def __init__(
        self,
        store: Store | None,
        settings: Callable[[], Settings],
        served: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._served = served  # the deployments served now (None: not checked)

    # --- serving --------------------------------------------------------------------------

    async def resolve(self, ref: AgentRef) -> AgentDef:
        """The agent version ``ref`` names; 404 naming it when there is none."""
        if self._store is None:
            cfg = self._settings().agents.get(ref.name)
            if cfg is None or (ref.version not in (None, 1)):
                raise _unknown(ref)
            return AgentDef(ref.name, 1, orjson.loads(canonical(cfg)))
        async with self._store.transaction() as session:
            repo = Agents(session)
            head = await repo.head(ref.name)
            if head is None:
                raise _unknown(ref)
            found = await repo.get(ref.name, ref.version or head.live_version)
        if found is None:
            raise _unknown(ref)
        return AgentDef(found.name, found.version, orjson.loads(found.spec))

    async def apply(self, body: Any) -> tuple[Any, AgentDef | None]:
        """A Responses request body with the agent it names applied (``expand``), and that
        agent version; a body that names none passes unchanged (one dict lookup or two)."""
        if not isinstance(body, dict) or not names_agent(body):
            return body, None
        agent = await self.resolve(reference_of(body))
        return expand(body, agent), agent

    # --- recording ------------------------------------------------------------------------

    async def sync(self, settings: Settings) -> None:
        """Record the config's changed agents and make them live; drop config agents gone."""
        store = self._need()
        for name, cfg in settings.agents.items():
            spec = canonical(cfg)
            await _retrying(lambda n=name, s=spec: self._sync_one(store, n, s))  # type: ignore[misc]
        async with store.transaction() as session:
            repo = Agents(session)
            for head in await repo.heads():
                if head.origin == CONFIG and head.name not in settings.agents:
                    await repo.drop_head(head.name)

    async def _sync_one(self, store: Store, name: str, spec: str) -> None:
        digest = _hash(spec)
        async with store.transaction() as session:
            repo = Agents(session)
            newest = await repo.latest(name)
            from_config = await repo.latest(name, CONFIG)
            head = await repo.head(name)
            if from_config is None or from_config.spec_hash != digest:
                added = await repo.append(
                    name, spec, digest, CONFIG, newest.version if newest else 0
                )
                await repo.set_head(name, added.version, CONFIG)
            elif head is None or head.origin != CONFIG:
                await repo.set_head(
                    name, head.live_version if head else from_config.version, CONFIG
                )

    async def create_version(
        self, name: str, raw: dict[str, Any], *, live: bool = True
    ) -> AgentVersion:
        """Record a new version of ``name`` (a new agent when unknown); 400 naming the field
        when the definition is not valid or its deployment is not served."""
        cfg = self._checked(raw)
        spec = canonical(cfg)
        store = self._need()

        async def record() -> AgentVersion:
            async with store.transaction() as session:
                repo = Agents(session)
                newest = await repo.latest(name)
                head = await repo.head(name)
                added = await repo.append(
                    name, spec, _hash(spec), API, newest.version if newest else 0
                )
                if live or head is None:
                    await repo.set_head(name, added.version, head.origin if head else API)
                return added

        return await _retrying(record)

    async def set_live(self, name: str, version: int) -> AgentInfo:
        store = self._need()
        async with store.transaction() as session:
            repo = Agents(session)
            head = await self._head(repo, name)
            if await repo.get(name, version) is None:
                raise NotFound(
                    f"agent {name!r} has no version {version}",
                    param="version",
                    code="agent_version_not_found",
                )
            await repo.set_head(name, version, head.origin)
        return await self.get(name)

    async def rollback(self, name: str, version: int | None = None) -> AgentInfo:
        """Make ``version`` live, or the newest version below the live one."""
        if version is None:
            info = await self.get(name)
            below = [v.version for v in info.versions if v.version < info.live_version]
            if not below:
                raise InvalidRequest(
                    f"agent {name!r}: version {info.live_version} is its first; "
                    "nothing to roll back to",
                    param="version",
                )
            version = below[-1]
        return await self.set_live(name, version)

    async def delete(self, name: str) -> None:
        if name in self._settings().agents:
            raise InvalidRequest(
                f"agent {name!r} is defined in the config; remove it there (and reload)",
                param="name",
                code="agent_in_config",
            )
        async with self._need().transaction() as session:
            repo = Agents(session)
            await self._head(repo, name)
            await repo.drop_head(name)
            await repo.drop_versions(name)

    # --- reading --------------------------------------------------------------------------

    async def list(self) -> list[AgentInfo]:
        if self._store is None:
            return [self._configured(n) for n in sorted(self._settings().agents)]
        async with self._store.transaction() as session:
            repo = Agents(session)
            return [
                AgentInfo(h.name, h.origin, h.live_version, await repo.history(h.name))
                for h in await repo.heads()
            ]

    async def get(self, name: str) -> AgentInfo:
        if self._store is None:
            if name not in self._settings().agents:
                raise _unknown(AgentRef(name, None, "name"))
            return self._configured(name)
        async with self._store.transaction() as session:
            repo = Agents(session)
            head = await self._head(repo, name)
            return AgentInfo(name, head.origin, head.live_version, await repo.history(name))

    def _configured(self, name: str) -> AgentInfo:
        from datetime import UTC, datetime

        spec = canonical(self._settings().agents[name])
        version = AgentVersion(name, 1, spec, _hash(spec), CONFIG, datetime.fromtimestamp(0, UTC))
        return AgentInfo(name, CONFIG, 1, [version])

    async def _head(self, repo: Agents, name: str) -> AgentHead:
        head = await repo.head(name)
        if head is None:
            raise _unknown(AgentRef(name, None, "name"))
        return head

    def _checked(self, raw: dict[str, Any]) -> AgentConfig:
        try:
            cfg = AgentConfig.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            path = _path(err["loc"])
            raise InvalidRequest(f"{path}: {err['msg']}", param=path) from exc
        served = self._served() if self._served is not None else None
        if served is not None and cfg.deployment not in served:
            raise InvalidRequest(
                f"deployment: unknown deployment {cfg.deployment!r}; "
                f"known: {', '.join(sorted(served))}",
                param="deployment",
                code="model_not_found",
            )
        return cfg

    def _need(self) -> Store:
        if self._store is None:
            raise InvalidRequest(
                "this server keeps no store: agents are read from the config only", code="no_store"
            )
        return self._store


def _path(loc: tuple[int | str, ...]) -> str:
    """``("tools", 0, "mcp", "server_label")`` → ``tools[0].server_label`` (the union's tag
    left out: the tool's ``type`` says it)."""
    out = ""
    after_index = False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            after_index = True
            continue
        if not (after_index and part in ("mcp", "function")):
            out += f".{part}" if out else part
        after_index = False
    return out or "body"


def _unknown(ref: AgentRef) -> NotFound:
    version = f" version {ref.version}" if ref.version is not None else ""
    return NotFound(
        f"no agent {ref.name!r}{version}; list them with 'modelyard agents list' "
        "or GET /admin/v1/agents",
        param=ref.param,
        code="agent_not_found",
    )
