"""Tallies record in plain Python and flush into prometheus-client: the exposition is the one
the library's own ``inc`` and ``observe`` would have produced, bucket edges included."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from modelyard.observability.metrics import CounterTally, HistogramTally

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
