"""Everything a request handler needs, hung off the app (no globals)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from modelyard.core.errors import QueueFull
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.models import ModelService
from modelyard.services.shadow import ShadowMirror
from modelyard.services.tenancy import TenancyAdmin, bootstrap_keys
from modelyard.store import Store
from modelyard.tenancy.keys import KeyRing

access_log = logging.getLogger("modelyard.access")


class InFlight:
    """Bounds concurrent requests per process so overload becomes a 429, not unbounded memory."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def enter(self) -> None:
        if self.count >= self.limit:
            raise QueueFull(
                f"the gateway is at its limit of {self.limit} requests in flight; retry shortly",
                code="gateway_busy",
                retry_after=1.0,
            )
        self.count += 1

    def leave(self) -> None:
        self.count -= 1


@dataclass
class AppState:
    """Config-derived parts are replaced whole on reload; a request keeps the ones it started
    with, because it took its references before the swap."""

    gateway: Gateway
    keys: KeyRing = field(init=False)
    meter: Meter = field(init=False)
    in_flight: InFlight = field(init=False)
    max_body_bytes: int = field(init=False)
    access_log: bool = field(init=False)
    chat: ChatService = field(init=False)
    embeddings: EmbeddingService = field(init=False)
    models: ModelService = field(init=False)
    ready_checked_at: float = 0.0
    local_ready: bool = False
    # Set once the store is open (serve); None when embedded without a store.
    shadow: ShadowMirror | None = None
    admin: TenancyAdmin | None = None
    store: Store | None = None  # the open store, for read-only admin views (eval runs)
    stored_keys: KeyRing | None = None  # keys from the store, installed by the refresher

    def __post_init__(self) -> None:
        self.in_flight = InFlight(self.gateway.settings.server.max_in_flight)
        self.meter = Meter(None, None, lambda: self.gateway)
        self.install(self.gateway)

    def install(self, gateway: Gateway) -> None:
        server = gateway.settings.server
        self.gateway = gateway
        if self.stored_keys is None:
            self.keys = KeyRing(bootstrap=bootstrap_keys(gateway.settings))
        self.in_flight.limit = server.max_in_flight
        self.max_body_bytes = server.max_body_bytes
        self.access_log = server.access_log
        self.chat = ChatService(gateway, shadow=self.shadow)
        self.embeddings = EmbeddingService(gateway)
        self.models = ModelService(gateway)

    def install_keys(self, keys: KeyRing) -> None:
        self.stored_keys = keys
        self.keys = keys

    def attach_shadow(self, mirror: ShadowMirror) -> None:
        self.shadow = mirror
        self.chat = ChatService(self.gateway, shadow=mirror)

    def log_access(
        self, rid: str, path: str, status: int, started: float, model: str | None
    ) -> None:
        if self.access_log and access_log.isEnabledFor(logging.INFO):
            elapsed_ms = (time.perf_counter() - started) * 1000
            access_log.info("%s %s %d %.1fms model=%s", rid, path, status, elapsed_ms, model or "-")
