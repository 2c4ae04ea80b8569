"""The composition root: everything a served app runs on, built once, complete when built.

``Root.open`` opens nothing it does not need and leaves nothing to fill in later: the store
(when there is one) and its deployment versions, the limiter, the ledger's and the shadow
records' background writers, the key refresher, the meter, and the config-derived parts
(``Configured``: gateway, request pipeline, model listing) that a reload replaces whole with one
assignment. A request takes ``root.current`` once and keeps what it took, however long it runs.
``aclose`` stops everything in reverse order, so every queued record is written before the
store closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import orjson

from modelyard.config import ConfigError, Settings, load_settings
from modelyard.config.loader import data_dir
from modelyard.config.schema import DeploymentConfig
from modelyard.core.errors import ModelyardError
from modelyard.core.timeouts import CallTimeouts
from modelyard.services.agents import AgentBook
from modelyard.services.background import BackgroundRunner
from modelyard.services.build import with_overrides
from modelyard.services.changes import Actions, Follower
from modelyard.services.chat import ChatService
from modelyard.services.deployments import served_overrides, sync_versions
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.guards import guard_stages
from modelyard.services.metering import Meter
from modelyard.services.models import ModelService
from modelyard.services.observing import log_breaker
from modelyard.services.pipeline import Pipeline, Stages
from modelyard.services.readiness import Pingable, Readiness, States, state
from modelyard.services.response_state import ResponseState, ResponseWrites
from modelyard.services.shadow import ShadowMirror
from modelyard.services.stages import default_stages
from modelyard.services.tenancy import KeyRefresher, TenancyAdmin, bootstrap_keys
from modelyard.store import Store, StoreError
from modelyard.store.changes import CONFIG, announce_now
from modelyard.store.journal import Journal, open_journal
from modelyard.store.ledger_writer import LedgerWriter, ledger_writer
from modelyard.store.shadow_records import ShadowRecord, ShadowRecords
from modelyard.store.sink import BatchSink
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.keys import KeyRing
from modelyard.tenancy.limits import Limiter, limiter_from_url

if TYPE_CHECKING:
    from modelyard.observability.metrics import Metrics
    from modelyard.routing.model import RouterModel
    from modelyard.services.observed import Observation
    from modelyard.services.sso import Sso

log = logging.getLogger("modelyard.server")
REDIS_URL_ENV = "MODELYARD_REDIS_URL"
GAUGE_INTERVAL_S = 1.0
RECOVERY_BATCH = 500  # journaled rows per ledger write at start
_LOCAL_HEALTH = CallTimeouts(connect=1.0, first_token=1.0, total=2.0)
_RELOAD_REFUSED: Final[Mapping[str, str]] = MappingProxyType(
    {"event": "reload_refused", "reason": "the config or the version store failed"}
)


@dataclass(frozen=True, slots=True)
class Configured:
    """What one config makes: swapped whole on reload."""

    gateway: Gateway
    pipeline: Pipeline
    models: ModelService
    max_body_bytes: int

    @property
    def settings(self) -> Settings:
        return self.gateway.settings


@dataclass(slots=True)
class _Writers:
    ledger: BatchSink[LedgerRow]
    ledger_writer: LedgerWriter
    shadows: BatchSink[ShadowRecord]
    database: str  # the store's URL, password hidden
    journal: Journal | None = None

    async def aclose(self) -> None:
        for sink in (self.shadows, self.ledger):
            await sink.aclose()
        await self.ledger_writer.aclose()
        if self.journal is not None:
            self.journal.close()  # deleted only when every row is written and none is open


def standalone_pipeline(gateway: Gateway) -> Pipeline:
    """A pipeline with no limits, ledger or shadows, for in-process use (``modelyard chat``)."""
    meter = Meter(None, None, lambda: gateway)
    embeddings = EmbeddingService(gateway)
    stages = default_stages(None, *guard_stages(gateway.policies))
    return Pipeline(ChatService(gateway), embeddings, meter, stages, set())


def _sso(settings: Settings, store: Store | None) -> Sso | None:
    """Single sign-on when ``sso:`` is set. Its module is imported only then: joserfc and
    cryptography, about 9 MB, are nothing a gateway without it uses."""
    if settings.sso is None:
        return None
    from modelyard.services.sso import Sso

    return Sso(settings.sso, store)


def limiter_for(settings: Settings) -> Limiter:
    cfg = settings.limits
    url = os.environ.get(REDIS_URL_ENV) or (cfg.redis_url.reveal() if cfg.redis_url else None)
    if url:
        log.info("limits and budgets are shared through Redis")
    return limiter_from_url(url, fail_open=cfg.fail_open)


class Root:
    """Build with ``await Root.open(...)``; every field is set, for the app's whole life.
    ``admin``, ``store`` and ``shadow`` are None only on a server run without a store."""

    def __init__(
        self,
        gateway: Gateway,
        limiter: Limiter,
        store: Store | None,
        writers: _Writers | None,
        stages: Stages | None = None,
        observation: Observation | None = None,
    ) -> None:
        self.store = store
        self.observation = observation  # None: no metrics, no traces
        self.limiter = limiter
        self._writers = writers
        self._stages = stages
        self._ending: set[asyncio.Task[None]] = set()
        self._gauges: asyncio.Task[None] | None = None
        settings = gateway.settings
        record = writers.ledger.put if writers and settings.store.usage_ledger else None
        journal = writers.journal if writers else None
        self.meter = Meter(limiter, record, lambda: self.current.gateway, journal)
        self.shadow = ShadowMirror(writers.shadows.put) if writers else None
        self.admin = TenancyAdmin(store) if store else None
        # Stored responses (the Responses API), written in batches off the request path.
        self.response_writes = ResponseWrites(store) if store else None
        if self.response_writes is not None:
            self.response_writes.start()
        self.keys = KeyRing(bootstrap=bootstrap_keys(settings))
        self._stored_keys = False
        self._readiness = Readiness()
        # The config file's settings and the rolled-back specs served over them (set by open
        # and reload): what following another replica's deployment change starts from.
        self._config = settings
        self._overrides: Mapping[str, DeploymentConfig] = {}
        self._swap = asyncio.Lock()  # one gateway swap at a time (reload, following)
        self.follower: Follower | None = None
        # Single sign-on (admin API bearer tokens, /auth/*); set at start, not on reload.
        self.sso = _sso(settings, store)
        self.current = self._configure(gateway)
        # Named agents (read per agent request) and background responses (issue 19).
        self.agents = AgentBook(
            store, lambda: self.current.settings, lambda: self.current.gateway.table.names
        )
        self.background = BackgroundRunner(store)
        interval = settings.store.resync_interval_s
        self.refresher = (
            KeyRefresher(
                store, lambda: bootstrap_keys(self.current.settings), self.install_keys, interval
            )
            if store
            else None
        )

    @classmethod
    async def open(
        cls,
        gateway: Gateway,
        store: Store | None = None,
        stages: Stages | None = None,
        observation: Observation | None = None,
        config_path: Path | None = None,
    ) -> Root:
        """Everything started. With a store (taken over: ``aclose`` closes it), the config's
        deployment versions are recorded and any rollback served before the first request;
        a store that fails here fails the start rather than serve a rolled-back deployment
        wrong. A gateway built here (rollbacks applied, routers read from the store) is built
        in a worker thread, as on reload: start-up's other tasks run on meanwhile."""
        writers = None
        config = gateway.settings
        overrides: Mapping[str, DeploymentConfig] = {}
        try:
            if store is not None:
                gateway, overrides = await _versioned(gateway, store)
                writers = _writers(store)
                writers.journal = await _journal(gateway.settings, writers)
            gateway = await _with_stored_routers(gateway, store)
            limiter = limiter_for(gateway.settings)
            root = cls(gateway, limiter, store, writers, stages, observation)
            if store is not None:
                await root.agents.sync(gateway.settings)
                stored = ResponseState(store, root.response_writes)
                await root.background.fail_orphans(lambda owner, body: stored.save(owner, body, []))
            root._config, root._overrides = config, overrides
            if root.refresher is not None:
                await root.refresher.refresh()
                root.refresher.start()
            if store is not None:
                await root._follow(store, config_path)
            root.start_gauges()
        except BaseException:
            if writers is not None:
                await writers.aclose()
            if store is not None:
                await store.aclose()
            raise
        return root

    async def _follow(self, store: Store, config_path: Path | None) -> None:
        """Follow what other replicas change (``services/changes.py``)."""
        actions = Actions(
            self.keys_changed,
            self.follow_deployments,
            lambda: self.reload(config_path, announce=False),
        )
        self.follower = Follower(store, actions, self._config.store.resync_interval_s)
        await self.follower.start()

    async def follow_deployments(self) -> None:
        """Serve the deployment versions as the store now says (a rollback recorded by another
        replica or the CLI), recording nothing; no swap when nothing served changes."""
        if self.store is None:
            return
        async with self._swap:
            config = self._config
            overrides = await served_overrides(self.store, config)
            if overrides == self._overrides:
                return
            old = self.current.gateway
            served = with_overrides(config, overrides)
            try:
                routers = await _routers(served, self.store)
                new = await asyncio.to_thread(  # off the loop, as in ``_reload``
                    Gateway, served, old.local_base_url, previous=old, routers=routers
                )
            except ConfigError as exc:
                log.error("deployment versions not followed, serving the current ones: %s", exc)
                return
            self._overrides = overrides
            self.install(new)
        log.info(
            "deployments re-read from the store: %s",
            ", ".join(f"{name} (rolled back)" for name in sorted(overrides)) or "as configured",
            extra={"event": "reload", "reason": "deployment versions changed"},
        )

    @property
    def gateway(self) -> Gateway:
        return self.current.gateway

    def _configure(self, gateway: Gateway) -> Configured:
        gateway.take_over()  # served from now on: the breakers take its settings
        stages = self._stages or default_stages(self.shadow, *guard_stages(gateway.policies))
        chat, embeddings = ChatService(gateway), EmbeddingService(gateway)
        observation = self.observation
        if observation is not None:  # first: it sees the upstream's own answer
            stages = Stages(stages.pre, (observation.stage, *stages.stream))
            gateway.router.health.watch(observation.breaker_changed)
        else:  # transitions are rare: logged whatever else is on
            gateway.router.health.watch(log_breaker)
        pipeline = Pipeline(chat, embeddings, self.meter, stages, self._ending, observation)
        limit = gateway.settings.server.max_body_bytes
        return Configured(gateway, pipeline, ModelService(gateway), limit)

    def install(self, gateway: Gateway) -> None:
        """Serve ``gateway``'s config from the next request on (one assignment)."""
        if not self._stored_keys:
            self.keys = KeyRing(bootstrap=bootstrap_keys(gateway.settings))
        self.current = self._configure(gateway)

    def install_keys(self, keys: KeyRing) -> None:
        self._stored_keys = True
        self.keys = keys

    async def keys_changed(self) -> None:
        """Read the store's keys now rather than at the next poll: after a tenancy write this
        server served (a revoked key stops here before the write's answer leaves), or when a
        request presents a key this server does not hold yet. Other servers see a write within
        their poll interval. A store that fails leaves the keys as they are."""
        if self.refresher is None:
            return
        try:
            await self.refresher.refresh(share=True)
        except StoreError as exc:
            log.warning("key refresh failed, keeping the current keys: %s", exc)

    async def states(self) -> States:
        """What ``/readyz`` says: the store, Redis and the embedded model, each probed with a
        short timeout and the answer kept for a second."""
        probes, limiter = self._readiness, self.limiter
        store = None if self.store is None else await probes.check("store", self.store.ping)
        redis = await probes.check("redis", limiter.ping) if isinstance(limiter, Pingable) else None
        gateway = self.current.gateway
        local = "off"
        if gateway.settings.local.enabled:
            loaded = await probes.check("local", lambda: _local_ready(gateway))
            local = "ready" if loaded else "not ready"
        return States(state(store), state(redis), local, not gateway.settings.limits.fail_open)

    def start_gauges(self) -> None:
        """Every worker refreshes its state gauges each second (a scrape reads them all): the
        ledger's queue, the embedded model's queues."""
        if self.observation is None or self.observation.metrics is None:
            return
        metrics = self.observation.metrics

        async def loop() -> None:
            while True:
                metrics.flush()  # this worker's tallies reach the shared values
                self.refresh_gauges()
                await _local_queues(self.current.gateway, metrics)
                await asyncio.sleep(GAUGE_INTERVAL_S)

        self._gauges = asyncio.get_running_loop().create_task(loop())

    def refresh_gauges(self) -> None:
        """The gauges read from state (the ledger's queue), before a scrape."""
        metrics = self.observation.metrics if self.observation is not None else None
        if metrics is None or self._writers is None:
            return
        ledger = self._writers.ledger
        metrics.ledger_pending.set(ledger.pending)
        metrics.ledger_dropped.set(ledger.dropped)
        oldest = ledger.oldest()
        metrics.ledger_lag.set(max(0.0, time.time() - oldest[1]) if oldest is not None else 0.0)

    async def reload(self, config_path: Path | None, *, announce: bool = True) -> bool:
        """Re-read the config and swap it in whole; a config with errors, or a version store
        that fails, leaves the running one. ``announce``: tell the other replicas to reload
        theirs (not when this reload was itself told to by another)."""
        async with self._swap:
            done = await self._reload(config_path)
        if done and announce and self.store is not None and self.follower is not None:
            try:
                await announce_now(self.store, CONFIG, self.follower.instance)
            except StoreError as exc:
                log.warning("other replicas not told of this reload: %s", exc)
        return done

    async def _reload(self, config_path: Path | None) -> bool:
        old = self.current.gateway
        overrides: Mapping[str, DeploymentConfig] = {}
        try:
            config = settings = await asyncio.to_thread(load_settings, config_path)
            if self.store is not None:
                overrides = await sync_versions(self.store, settings)
                settings = with_overrides(settings, overrides)
            routers = await _routers(settings, self.store)
            # Every provider, the catalog and the routing table, built off the event loop: the
            # build makes nothing bound to the loop (the transport and its connection pool
            # carry over; a provider's locks bind to the loop on first use), and of the state
            # it shares with the running config it only adds the new targets' breakers.
            new = await asyncio.to_thread(
                Gateway, settings, old.local_base_url, previous=old, routers=routers
            )
            if self.store is not None:
                await self.agents.sync(settings)
        except ConfigError as exc:
            log.error("reload refused, the running config stays: %s", exc, extra=_RELOAD_REFUSED)
            return False
        except StoreError as exc:
            log.error(
                "reload refused, the running config stays: version store: %s",
                exc,
                extra=_RELOAD_REFUSED,
            )
            return False
        self._config, self._overrides = config, overrides
        self.install(new)
        log.info(
            "reloaded %s: deployments %s",
            config_path,
            ", ".join(sorted(new.table.names)),
            extra={"event": "reload", "reason": "config re-read"},
        )
        if self.refresher is not None:
            await self.refresher.refresh(force=True)  # the config's keys may have changed
        return True

    async def aclose(self) -> None:
        if self._gauges is not None:
            self._gauges.cancel()
        if self.follower is not None:
            await self.follower.aclose()
        if self.refresher is not None:
            await self.refresher.aclose()
        # Background runs end failed and are recorded; their finishes join those under way.
        await self.background.aclose()
        if self._ending:  # finishes under way: their rows must reach the ledger
            await asyncio.gather(*self._ending, return_exceptions=True)
        if self.shadow is not None:
            await self.shadow.aclose()
        if self.response_writes is not None:
            await self.response_writes.aclose()
        if self._writers is not None:
            await self._writers.aclose()
        await self.limiter.aclose()
        if self.sso is not None:
            await self.sso.aclose()
        await self.current.gateway.aclose()
        if self.observation is not None:  # flushes queued spans: may wait on the collector
            await asyncio.to_thread(self.observation.shutdown)
        if self.store is not None:
            await self.store.aclose()


async def _local_queues(gateway: Gateway, metrics: Metrics) -> None:
    """The embedded model's queue depths, from its worker's health answer."""
    base = gateway.local_base_url
    if base is None or not gateway.settings.local.enabled:
        return
    health = base.removesuffix("/v1") + "/health"
    try:
        resp = await gateway.transport.get(health, {}, _LOCAL_HEALTH, "local runtime")
        waiting = orjson.loads(resp.body).get("waiting", {})
    except (ModelyardError, orjson.JSONDecodeError, AttributeError):
        return  # starting or restarting: the readiness probe says so, the gauges keep their value
    for model, depth in waiting.items():
        metrics.local_queue.labels(str(model)).set(float(depth))


async def _local_ready(gateway: Gateway) -> bool:
    base = gateway.local_base_url
    if base is None:
        return False
    health = base.removesuffix("/v1") + "/health"
    try:
        resp = await gateway.transport.get(health, {}, _LOCAL_HEALTH, "local runtime")
    except ModelyardError:
        return False
    return resp.status == 200


async def _versioned(
    gateway: Gateway, store: Store
) -> tuple[Gateway, Mapping[str, DeploymentConfig]]:
    """The gateway for the config as its recorded versions say (rollbacks applied), and the
    rolled-back specs it serves."""
    settings = gateway.settings
    try:
        overrides = await sync_versions(store, settings)
        if overrides:
            served = with_overrides(settings, overrides)
            new = await asyncio.to_thread(  # off the loop, as in ``_reload``
                Gateway, served, gateway.local_base_url, previous=gateway
            )
            return new, overrides
    except ConfigError as exc:
        log.error("rolled-back deployments not applied, serving the config: %s", exc)
    return gateway, {}


async def _routers(settings: Settings, store: Store | None) -> Mapping[str, RouterModel] | None:
    """The learned routers the config names, read off the event loop (None: it names none;
    numpy stays unimported)."""
    if not any(d.router is not None for d in settings.deployments.values()):
        return None
    from modelyard.services.routers import preload

    return await preload(settings, store)


async def _with_stored_routers(gateway: Gateway, store: Store | None) -> Gateway:
    """The gateway with the routers the config names in the store (the one ``create_app``
    built could not read them: the store was not open yet); raises ``ConfigError`` when one
    cannot be read, which fails the start."""
    settings = gateway.settings
    if not any(d.router and d.router.name for d in settings.deployments.values()):
        return gateway
    routers = await _routers(settings, store)
    return await asyncio.to_thread(  # off the loop, as in ``_reload``
        Gateway, settings, gateway.local_base_url, previous=gateway, routers=routers
    )


async def _journal(settings: Settings, writers: _Writers) -> Journal | None:
    """The ledger's journal (``store/journal.py``), after writing what the journals of killed
    processes left: their queued rows, and their requests in flight as ``interrupted``. Done
    before the first request; a store that fails here fails the start, the journals kept."""
    cfg = settings.store
    if not (cfg.journal and cfg.usage_ledger):
        return None
    # One directory per database (its URL without the password, hashed): a journal is only
    # ever recovered into the database its rows were meant for, whatever else shares the
    # data directory (another gateway, a test).
    url = writers.database.encode()
    directory = (cfg.journal_dir or data_dir() / "journal") / hashlib.sha256(url).hexdigest()[:16]
    try:
        journal, rows = await asyncio.to_thread(open_journal, directory, writers.ledger.put)
    except OSError as exc:  # serving comes first; what the journal was for is said loudly
        log.error("ledger journal off (%s): %s; a kill loses the rows in flight", directory, exc)
        return None
    try:
        for start in range(0, len(rows), RECOVERY_BATCH):
            await writers.ledger_writer.write(rows[start : start + RECOVERY_BATCH])
    except BaseException:
        journal.close()
        raise
    await asyncio.to_thread(journal.recovered)
    writers.ledger.on_written = journal.committed
    return journal


def _writers(store: Store) -> _Writers:
    async def write_shadows(batch: list[ShadowRecord]) -> None:
        async with store.transaction() as session:
            await ShadowRecords(session).append(batch)

    writer = ledger_writer(store)
    writers = _Writers(
        BatchSink("usage ledger", writer.write),
        writer,
        BatchSink("shadow records", write_shadows, max_queue=10_000),
        store.engine.url.render_as_string(hide_password=True),
    )
    writers.ledger.start()
    writers.shadows.start()
    return writers
