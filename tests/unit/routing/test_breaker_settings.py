"""A reload's breaker settings on a health board whose targets carry their state over."""

from __future__ import annotations

from modelyard.routing.health import BreakerSettings, HealthBoard


def test_new_settings_reach_every_target_and_a_new_window_starts_its_counts_afresh() -> None:
    board = HealthBoard(BreakerSettings(window_s=30.0), latency_alpha=0.3)
    health = board.of("p/m")
    health.success(None, now=100.0)
    health.failure(now=100.5)
    assert health.recent(now=101.0) == (2, 1)

    board.configure(BreakerSettings(window_s=30.0, failures=9), latency_alpha=0.6)
    assert (health.settings.failures, health.latency_alpha) == (9, 0.6)
    assert health.recent(now=101.0) == (2, 1)  # the same window: its counts stand
    assert health.consecutive_failures == 1

    board.configure(BreakerSettings(window_s=60.0, failures=9), latency_alpha=0.6)
    assert health.recent(now=101.0) == (0, 0)  # slices of another width: counted afresh
    assert board.of("p/new").settings.window_s == 60.0  # and a target seen later gets them
