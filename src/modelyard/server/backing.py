"""What a served app runs beside its requests: the limiter, the usage ledger's and the shadow
records' background writers, and the key refresher. Started in the app's lifespan, stopped in
reverse order so every queued record is written before the store closes."""

from __future__ import annotations

import logging
import os

from modelyard.server.state import AppState
from modelyard.services.metering import Meter
from modelyard.services.shadow import ShadowMirror
from modelyard.services.tenancy import KeyRefresher, TenancyAdmin, bootstrap_keys
from modelyard.store import Store
from modelyard.store.ledger_writer import LedgerWriter, ledger_writer
from modelyard.store.shadow_records import ShadowRecord, ShadowRecords
from modelyard.store.sink import BatchSink
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.limits import Limiter, limiter_from_url

log = logging.getLogger("modelyard.server")
REDIS_URL_ENV = "MODELYARD_REDIS_URL"


def limiter_for(state: AppState) -> Limiter:
    cfg = state.gateway.settings.limits
    url = os.environ.get(REDIS_URL_ENV) or (cfg.redis_url.reveal() if cfg.redis_url else None)
    if url:
        log.info("limits and budgets are shared through Redis")
    return limiter_from_url(url, fail_open=cfg.fail_open)


class Backing:
    def __init__(self, state: AppState, store: Store | None) -> None:
        self.state = state
        self.store = store
        self.limiter = limiter_for(state)
        self.ledger: BatchSink[LedgerRow] | None = None
        self.ledger_writer: LedgerWriter | None = None
        self.shadows: BatchSink[ShadowRecord] | None = None
        self.refresher: KeyRefresher | None = None

    async def start(self) -> None:
        state, store = self.state, self.store
        if store is None:
            state.meter = Meter(self.limiter, None, lambda: state.gateway)
            return

        async def write_shadows(batch: list[ShadowRecord]) -> None:
            async with store.transaction() as session:
                await ShadowRecords(session).append(batch)

        self.ledger_writer = ledger_writer(store)
        self.ledger = BatchSink("usage ledger", self.ledger_writer.write)
        self.shadows = BatchSink("shadow records", write_shadows, max_queue=10_000)
        self.ledger.start()
        self.shadows.start()
        record = self.ledger.put if state.gateway.settings.store.usage_ledger else None
        state.meter = Meter(self.limiter, record, lambda: state.gateway)
        state.attach_shadow(ShadowMirror(self.shadows.put))
        state.admin = TenancyAdmin(store)
        state.store = store
        self.refresher = KeyRefresher(
            store, lambda: bootstrap_keys(state.gateway.settings), state.install_keys
        )
        await self.refresher.refresh()
        self.refresher.start()

    async def keys_changed(self) -> None:
        """After a reload: the config's keys may have changed."""
        if self.refresher is not None:
            await self.refresher.refresh(force=True)

    async def aclose(self) -> None:
        if self.refresher is not None:
            await self.refresher.aclose()
        if self.state.shadow is not None:
            await self.state.shadow.aclose()
        for sink in (self.shadows, self.ledger):
            if sink is not None:
                await sink.aclose()
        if self.ledger_writer is not None:
            await self.ledger_writer.aclose()
        await self.limiter.aclose()
