"""What the router knows about each target: its circuit breaker and its recent latency.

All state lives in memory of one gateway process (a breaker opens per process; that is the
point of a breaker: stop this process from waiting on a failing target).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]
BUCKETS = 30  # the error-rate window's slices (1 s each for the default 30 s window)
# Told of every breaker state change: (target key, new state). Observability's hook.
OnChange = Callable[[str, BreakerState], None]


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failures: int = 5
    error_rate: float = 0.5
    min_requests: int = 20
    window_s: float = 30.0
    cooldown_s: float = 15.0


@dataclass(slots=True)
class TargetHealth:
    settings: BreakerSettings
    latency_alpha: float = 0.3
    state: BreakerState = "closed"
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probing: bool = False
    ttft_ewma: float | None = None
    key: str = ""
    on_change: OnChange | None = None
    # The error-rate rule's window as a ring of ``BUCKETS`` slices of ``window_s / BUCKETS``
    # seconds: each slice's number (monotonic time // width), its calls and its failures. A
    # slice is reset when its number comes round again, so the window covers the last
    # ``window_s`` to within one slice. Kept as counts, not one entry per outcome: that grew
    # with the request rate (about 4 MB at 2,500 requests/s per target, issue 25).
    _slice: list[int] = field(default_factory=lambda: [-1] * BUCKETS, init=False, repr=False)
    _calls: list[int] = field(default_factory=lambda: [0] * BUCKETS, init=False, repr=False)
    _failed: list[int] = field(default_factory=lambda: [0] * BUCKETS, init=False, repr=False)

    def reconfigure(self, settings: BreakerSettings, latency_alpha: float) -> None:
        """A reload's settings from now on; the state carries over. A changed window starts
        its counts afresh (its slices are numbered by the window's width)."""
        if settings.window_s != self.settings.window_s:
            self._slice = [-1] * BUCKETS
            self._calls = [0] * BUCKETS
            self._failed = [0] * BUCKETS
        self.settings = settings
        self.latency_alpha = latency_alpha

    def available(self, now: float | None = None) -> bool:
        """May a request go to this target now? A half-open breaker lets one probe through."""
        now = time.monotonic() if now is None else now
        if self.state == "closed":
            return True
        if self.state == "open" and now - self.opened_at >= self.settings.cooldown_s:
            self.state = "half_open"
            self.probing = False
            if self.on_change is not None:
                self.on_change(self.key, "half_open")
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def success(self, ttft_s: float | None, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.consecutive_failures = 0
        if self.state != "closed" and self.on_change is not None:
            self.on_change(self.key, "closed")
        self.state = "closed"
        self.probing = False
        self._record(now, True)
        if ttft_s is not None:
            a = self.latency_alpha
            self.ttft_ewma = (
                ttft_s if self.ttft_ewma is None else a * ttft_s + (1 - a) * self.ttft_ewma
            )

    def failure(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.consecutive_failures += 1
        self._record(now, False)
        if self.state == "half_open" or self._should_open(now):
            if self.state != "open" and self.on_change is not None:
                self.on_change(self.key, "open")
            self.state = "open"
            self.opened_at = now
            self.probing = False

    def _record(self, now: float, ok: bool) -> None:
        number = int(now * BUCKETS / self.settings.window_s)
        i = number % BUCKETS
        if self._slice[i] != number:
            self._slice[i], self._calls[i], self._failed[i] = number, 0, 0
        self._calls[i] += 1
        if not ok:
            self._failed[i] += 1

    def recent(self, now: float | None = None) -> tuple[int, int]:
        """Calls and failures within the error-rate window (``window_s``) before ``now``."""
        now = time.monotonic() if now is None else now
        oldest = int(now * BUCKETS / self.settings.window_s) - BUCKETS
        live = [i for i, number in enumerate(self._slice) if number > oldest]
        return sum(self._calls[i] for i in live), sum(self._failed[i] for i in live)

    def _should_open(self, now: float) -> bool:
        if self.consecutive_failures >= self.settings.failures:
            return True
        total, failed = self.recent(now)
        if total < self.settings.min_requests:
            return False
        return failed / total >= self.settings.error_rate


class HealthBoard:
    """Health per target key, kept across reloads for targets that stay."""

    def __init__(self, settings: BreakerSettings, latency_alpha: float) -> None:
        self.settings = settings
        self.latency_alpha = latency_alpha
        self._targets: dict[str, TargetHealth] = {}
        self._on_change: OnChange | None = None

    def of(self, key: str) -> TargetHealth:
        health = self._targets.get(key)
        if health is None:
            health = TargetHealth(self.settings, self.latency_alpha, key=key)
            health.on_change = self._on_change
            # One atomic step: a reload builds its gateway in a thread (``Root._reload``) while
            # the loop may ask for the same new target; both must get the one that is kept.
            health = self._targets.setdefault(key, health)
        return health

    def configure(self, settings: BreakerSettings, latency_alpha: float) -> None:
        """A reload's breaker settings and latency weight, for every target from now on, each
        keeping its state."""
        if settings == self.settings and latency_alpha == self.latency_alpha:
            return
        self.settings, self.latency_alpha = settings, latency_alpha
        for health in self._targets.values():
            health.reconfigure(settings, latency_alpha)

    def watch(self, on_change: OnChange | None) -> None:
        """Tell ``on_change`` of every state change from now on, for every target."""
        self._on_change = on_change
        for health in self._targets.values():
            health.on_change = on_change

    def snapshot(self) -> dict[str, TargetHealth]:
        return dict(self._targets)
