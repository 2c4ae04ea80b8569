"""What the router knows about each target: its circuit breaker and its recent latency.

All state lives in memory of one gateway process (a breaker opens per process; that is the
point of a breaker: stop this process from waiting on a failing target).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]
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
    # (monotonic time, ok) of recent outcomes, for the error-rate rule.
    outcomes: deque[tuple[float, bool]] = field(default_factory=deque)
    key: str = ""
    on_change: OnChange | None = None

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
        if self.state == "half_open" or self._should_open():
            if self.state != "open" and self.on_change is not None:
                self.on_change(self.key, "open")
            self.state = "open"
            self.opened_at = now
            self.probing = False

    def _record(self, now: float, ok: bool) -> None:
        self.outcomes.append((now, ok))
        horizon = now - self.settings.window_s
        while self.outcomes and self.outcomes[0][0] < horizon:
            self.outcomes.popleft()

    def _should_open(self) -> bool:
        if self.consecutive_failures >= self.settings.failures:
            return True
        total = len(self.outcomes)
        if total < self.settings.min_requests:
            return False
        failed = sum(1 for _, ok in self.outcomes if not ok)
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
            self._targets[key] = health
        return health

    def watch(self, on_change: OnChange | None) -> None:
        """Tell ``on_change`` of every state change from now on, for every target."""
        self._on_change = on_change
        for health in self._targets.values():
            health.on_change = on_change

    def snapshot(self) -> dict[str, TargetHealth]:
        return dict(self._targets)
