"""``services/observing.py``: the door to ``observed.py`` opens exactly when an observation would
be built, so a config that turns nothing on never imports metrics or traces, and one that turns
something on gets the same ``Observation`` as before."""

from __future__ import annotations

import itertools

import pytest

from modelyard.config.observability import ObservabilityConfig
from modelyard.services import observed, observing


@pytest.mark.parametrize(
    ("metrics", "tracing", "log_format"),
    list(itertools.product([False, True], [False, True], ["text", "json"])),
)
def test_observes_exactly_when_an_observation_is_built(
    metrics: bool, tracing: bool, log_format: str
) -> None:
    config = ObservabilityConfig.model_validate(
        {
            "metrics": {"enabled": metrics},
            "tracing": {"enabled": tracing, "exporter": "none"},
            "logs": {"format": log_format},
        }
    )
    built = observed.observation_for(config, ["/v1/chat/completions"])
    lazily = observing.observation_for(config, ["/v1/chat/completions"])
    try:
        assert observing.observes(config) is (built is not None)
        assert (lazily is None) is (built is None)
        if built is not None and lazily is not None:
            assert type(lazily) is type(built)
            assert (lazily.metrics is None, lazily.tracing is None) == (
                built.metrics is None,
                built.tracing is None,
            )
            assert lazily.routes == built.routes
    finally:
        for made in (built, lazily):
            if made is not None:
                made.shutdown()
