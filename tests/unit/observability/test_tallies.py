"""Tallies record in plain Python and flush into prometheus-client: the exposition is the one
the library's own ``inc`` and ``observe`` would have produced, bucket edges included."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelyard.core.chat import Usage
from modelyard.observability.metrics import CounterTally, HistogramTally, Metrics

VALUES = (0.0, 0.005, 0.0051, 0.1, 1, 2.5, 2.5000001, 300, 301, -1.0)


def test_a_flushed_histogram_tally_equals_observing_directly() -> None:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    buckets = (0.005, 0.1, 1, 2.5, 300)
    a = Histogram("h", "h", ["x"], buckets=buckets, registry=direct).labels("1")
    b = Histogram("h", "h", ["x"], buckets=buckets, registry=tallied).labels("1")
    tally = HistogramTally(b)
    for value in VALUES:
        a.observe(value)
        tally.observe(value)
    assert generate_latest(direct) != generate_latest(tallied)  # nothing until the flush
    tally.flush()
    tally.flush()  # a second flush adds nothing
    assert _without_created(generate_latest(direct)) == _without_created(generate_latest(tallied))


def test_a_flushed_counter_tally_equals_incrementing_directly() -> None:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    a = Counter("c", "c", registry=direct)
    tally = CounterTally(Counter("c", "c", registry=tallied))
    for amount in (1, 2.5, 0.25):
        a.inc(amount)
        tally.inc(amount)
    tally.flush()
    tally.flush()
    assert _without_created(generate_latest(direct)) == _without_created(generate_latest(tallied))


def _without_created(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if "_created" not in line]


def test_calls_and_requests_recorded_raw_are_grouped_by_label_set_at_the_flush() -> None:
    """Interleaved records of several label sets give each set exactly its own values: the
    flush groups them (sorted by the labels), whatever the order they came in."""
    route = "/v1/chat/completions"
    metrics = Metrics([route])
    a = (route, "chat", "p1", "m1", 200, "proj")
    b = (route, "chat", "p2", "m2", 502, "-")
    metrics.calls.extend(
        [
            (*a, 0.3, 0.2, Usage(10, 4), 7),
            (*b, 2.0, None, None, None),  # no attempt answered: no ``ok`` attempt, no spend
            (*a, 0.02, 0.01, Usage(1, 2, reasoning_tokens=1), None),
            (*b, 0.004, None, None, 0),
        ]
    )
    metrics.http(route, 200, 0.3)
    metrics.http("/not/ours", 404, 0.001)  # a raw path: recorded as ``other``
    metrics.http(route, 200, 0.03)
    metrics.flush()
    metrics.flush()  # a second flush adds nothing
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition()[0].decode())
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return got[name, tuple(sorted(labels.items()))]

    call_a = {"route": route, "deployment": "chat", "provider": "p1", "model": "m1"}
    call_b = {"route": route, "deployment": "chat", "provider": "p2", "model": "m2"}
    assert value("modelyard_requests_total", **call_a, status_class="2xx") == 2
    assert value("modelyard_requests_total", **call_b, status_class="5xx") == 2
    duration = "modelyard_request_duration_seconds"
    assert value(f"{duration}_sum", **call_a, status_class="2xx") == 0.3 + 0.02
    assert value(f"{duration}_bucket", **call_a, status_class="2xx", le="0.025") == 1
    assert value(f"{duration}_sum", **call_b, status_class="5xx") == 2.0 + 0.004
    assert value(f"{duration}_bucket", **call_b, status_class="5xx", le="0.005") == 1
    attempts = "modelyard_upstream_attempt_duration_seconds"
    assert value(f"{attempts}_count", provider="p1", outcome="ok") == 2
    assert value(f"{attempts}_count", provider="p2", outcome="ok") == 0
    tokens = "modelyard_tokens_total"
    assert value(tokens, deployment="chat", project="proj", kind="input") == 11
    assert value(tokens, deployment="chat", project="proj", kind="output") == 6
    assert value(tokens, deployment="chat", project="proj", kind="reasoning") == 1
    assert value(tokens, deployment="chat", project="-", kind="input") == 0
    assert value("modelyard_cost_usd_total", deployment="chat", project="proj") == 7e-6
    http = "modelyard_http_requests_total"
    assert value(http, route=route, status_class="2xx") == 2
    assert value(http, route="other", status_class="4xx") == 1
    assert value(
        "modelyard_http_request_duration_seconds_sum", route=route, status_class="2xx"
    ) == (0.3 + 0.03)
