"""What every served process needs of observability, whatever the config turns on.

The log set-up ``serve`` and its workers share, the access log's pieces, the breakers' log
lines and the route label, here rather than in ``observed.py``: that module (metrics and
traces) imports prometheus-client and OpenTelemetry's API, and a gateway with metrics and
tracing off and text logs imports neither (``tests/unit/server/test_imports_when_off.py``).
``observation_for`` imports it only when the config turns something on, once, when the app is
built: nothing on the request path asks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from modelyard.config.observability import ObservabilityConfig
from modelyard.observability.labels import MULTIPROC_ENV, OTHER
from modelyard.observability.logs import (
    JsonFormatter,
    TextStamp,
    chain_of,
    current_trace_id,
    json_head,
    our_handler,
    still_ours,
)
from modelyard.observability.logs import configure_logging as configure_logs
from modelyard.routing.health import BreakerState

if TYPE_CHECKING:
    from modelyard.services.observed import Observation

events = logging.getLogger("modelyard.events")
LOG_FORMAT_ENV: Final = "MODELYARD_LOG_FORMAT"  # serve's choice, for the workers it spawns
LOG_LEVEL_ENV: Final = "MODELYARD_LOG_LEVEL"
__all__ = [
    "LOG_FORMAT_ENV",
    "LOG_LEVEL_ENV",
    "MULTIPROC_ENV",
    "OTHER",
    "JsonFormatter",
    "TextStamp",
    "chain_of",
    "configure_logs",
    "current_trace_id",
    "json_head",
    "log_breaker",
    "observation_for",
    "observes",
    "our_handler",
    "still_ours",
]


def observes(settings: ObservabilityConfig) -> bool:
    """Whether the config asks for an ``Observation``: metrics, traces, or JSON logs (whose
    event lines, failovers and refusals, the call's watch writes)."""
    return settings.metrics.enabled or settings.tracing.enabled or settings.logs.format == "json"


def observation_for(settings: ObservabilityConfig, routes: Iterable[str]) -> Observation | None:
    """``observed.observation_for``, its module imported only when ``observes``; else None."""
    if not observes(settings):
        return None
    from modelyard.services.observed import observation_for as built

    return built(settings, routes)


def log_breaker(target: str, state: BreakerState) -> None:
    """A breaker's state change, logged once, with why it happens."""
    level = logging.WARNING if state == "open" else logging.INFO
    events.log(
        level,
        "breaker of %s is now %s (%s)",
        target,
        state,
        _BREAKER_REASONS[state],
        extra={"event": "breaker", "target": target, "state": state},
    )


_BREAKER_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "open": "too many failures: requests skip this target until the cool-down ends",
        "half_open": "cool-down over: one probe request may go through",
        "closed": "a request succeeded: the target is healthy again",
    }
)
