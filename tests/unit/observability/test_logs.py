"""The JSON-lines log format: one object per record, the request's facts from ``extra``, and
the trace id of the span current when the line was logged."""

from __future__ import annotations

import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from modelyard.observability.logs import JsonFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "modelyard.access", logging.INFO, __file__, 1, "%s done", ("r1",), None
    )
    record.__dict__.update(extra)
    return record


def test_a_line_carries_the_facts_it_was_given_and_nothing_else() -> None:
    line = JsonFormatter().format(
        _record(request_id="r1", key_id="k1", status=200, duration_ms=1.5, unrelated="x")
    )
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "r1 done" and data["logger"] == "modelyard.access"
    assert {k: data[k] for k in ("request_id", "key_id", "status", "duration_ms")} == {
        "request_id": "r1",
        "key_id": "k1",
        "status": 200,
        "duration_ms": 1.5,
    }
    assert "unrelated" not in data and "trace_id" not in data


def test_the_current_span_gives_the_trace_id() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("server") as span:
        data = json.loads(JsonFormatter().format(_record()))
    assert data["trace_id"] == format(span.get_span_context().trace_id, "032x")
