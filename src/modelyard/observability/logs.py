"""Log output: the classic text lines, or one JSON object per line.

A JSON line carries the record's time, level, logger and message, the trace id of the span
current when it was logged (tracing on), and the request's facts a call site passes as
``extra``: request id, key id, project, deployment, provider, model, route, status, durations,
and for events (breaker, reload, failover, limiter) the event's name and reason. Key ids are not
secrets; keys and upstream credentials are never passed to a log call.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Final

import orjson
from opentelemetry import trace

FIELDS: Final = (
    "request_id",
    "key_id",
    "project",
    "deployment",
    "provider",
    "model",
    "route",
    "status",
    "duration_ms",
    "ttft_ms",
    "attempts",
    "event",
    "target",
    "state",
    "kind",
    "reason",
)
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME: Final = "modelyard"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "ts": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for name in FIELDS:
            value = fields.get(name)
            if value is not None:
                line[name] = value
        trace_id = fields.get("trace_id")
        if trace_id is None:
            ctx = trace.get_current_span().get_span_context()
            trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        if trace_id is not None:
            line["trace_id"] = trace_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


_CHATTY = ("httpx2", "httpcore2", "mcp.client")


def configure_logging(level: str, fmt: str = "text") -> None:
    """One handler on stderr for the root logger (replacing ours if called again)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The MCP SDK's HTTP client logs each request's full URL at INFO: a tool server's URL may
    # carry a token in its query, and one line per call is noise. Its warnings still show.
    quiet = max(logging.WARNING, root.level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(quiet)
