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
import time
from datetime import UTC, datetime
from typing import Final, TextIO

import orjson

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


def current_trace_id() -> str | None:
    """The trace id of the span current now, when there is one (tracing on)."""
    # Looked up, not imported: a process that never loaded OpenTelemetry's API (tracing off)
    # has no current span, and a JSON log line must not load it (``services/observing.py``).
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def json_head(created: float, level: str, logger: str, message: str) -> dict[str, object]:
    """A JSON line's first fields, as ``JsonFormatter`` writes them."""
    when = datetime.fromtimestamp(created, UTC)
    return {
        "ts": when.isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": message,
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = json_head(record.created, record.levelname, record.name, record.getMessage())
        fields = record.__dict__
        for name in FIELDS:
            value = fields.get(name)
            if value is not None:
                line[name] = value
        trace_id = fields.get("trace_id")
        if trace_id is None:
            trace_id = current_trace_id()
        if trace_id is not None:
            line["trace_id"] = trace_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextStamp:
    """The text format's time stamp (``logging.Formatter``'s default ``asctime``), its
    ``strftime`` done once per second rather than once per line."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._text},{int((created - second) * 1000):03d}"


def our_handler(logger: logging.Logger) -> logging.StreamHandler[TextIO] | None:
    """The one handler ``configure_logging`` set, when it is the only one a record of
    ``logger`` at INFO reaches; else None (a handler was added, as pytest's ``caplog`` does,
    or INFO is off): log through ``logging``."""
    if logger.handlers or not logger.propagate or not logger.isEnabledFor(logging.INFO):
        return None
    parent = logger.parent
    while parent is not None and not parent.handlers:
        if not parent.propagate:
            return None
        parent = parent.parent
    if parent is None or parent.parent is not None or len(parent.handlers) != 1:
        return None  # the handlers are not the root's alone
    handler = parent.handlers[0]
    if handler.get_name() != _HANDLER_NAME or not isinstance(handler, logging.StreamHandler):
        return None
    if handler.level > logging.INFO or handler.filters:
        return None
    return handler


def still_ours(
    logger: logging.Logger, handler: logging.Handler, chain: tuple[logging.Logger, ...]
) -> bool:
    """What ``our_handler`` found still holds, in a few attribute reads: ``handler`` is the
    root's only one, no logger on ``chain`` (``logger`` and its parents below the root) has
    gained one, and INFO is on."""
    handlers = logging.root.handlers
    if len(handlers) != 1 or handlers[0] is not handler:
        return False
    for link in chain:
        if link.handlers:
            return False
    return logger.isEnabledFor(logging.INFO)


def chain_of(logger: logging.Logger) -> tuple[logging.Logger, ...]:
    """``logger`` and its parents, the root left out."""
    links: list[logging.Logger] = []
    link: logging.Logger | None = logger
    while link is not None and link is not logging.root:
        links.append(link)
        link = link.parent
    return tuple(links)


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
