"""The access log: one line per HTTP request, written in batches off the request's path.

Through ``logging``, a line costs a ``LogRecord``, the handler's lock, a ``strftime`` and one
``write`` system call per request: about a tenth of a small request's CPU. So while the line's
only destination is the stderr handler ``configure_logging`` set (the served case), a request
appends its facts to a list, and the list is formatted and written in one ``write`` at most
``flush_after_s`` later (or at ``max_lines``, or when the app stops). The lines are the ones
``logging`` would write, text or JSON, the JSON line carrying the trace id of the request's
span. When anything else listens (a handler added to the logger or the root, as pytest's
``caplog`` does; INFO off), each line goes through ``logging`` as before. A process killed
with SIGKILL loses the lines of its last ``flush_after_s``; its ledger rows are the record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Final, TextIO

import orjson

from modelyard.services.observing import (
    JsonFormatter,
    TextStamp,
    chain_of,
    current_trace_id,
    json_head,
    our_handler,
    still_ours,
)

if TYPE_CHECKING:
    from modelyard.server.middleware import Exchange

access_log = logging.getLogger("modelyard.access")
_PREFIX: Final = f" INFO {access_log.name}: "
_Line = tuple[float, "Exchange", str, int, float, str | None]


class AccessLog:
    """Batches the access lines of one process (one event loop)."""

    def __init__(self, flush_after_s: float = 0.1, max_lines: int = 256) -> None:
        self._flush_after_s = flush_after_s
        self._max_lines = max_lines
        self._lines: list[_Line] = []
        self._timer: asyncio.TimerHandle | None = None
        self._stamp = TextStamp()
        self._handler: logging.Handler | None = None  # ``our_handler``'s last finding
        self._chain = chain_of(access_log)

    def _ours(self) -> logging.StreamHandler[TextIO] | None:
        """Our stderr handler while it is the lines' only destination (checked cheaply while
        nothing changed; looked for again when something did)."""
        handler = self._handler
        if handler is not None and still_ours(access_log, handler, self._chain):
            return handler  # type: ignore[return-value]  # our_handler returned it
        found = self._handler = our_handler(access_log)
        return found

    def add(
        self, exchange: Exchange, path: str, status: int, elapsed_ms: float, traced: bool
    ) -> None:
        """The line of a finished request (``traced``: tracing is on, so the JSON line names
        the current span's trace)."""
        if self._ours() is None:
            if access_log.isEnabledFor(logging.INFO):
                _through_logging(exchange, path, status, elapsed_ms, None)
            return
        trace_id = current_trace_id() if traced else None
        self._lines.append((time.time(), exchange, path, status, elapsed_ms, trace_id))
        if len(self._lines) >= self._max_lines:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._flush_after_s, self.flush)

    def flush(self) -> None:
        """Write the lines gathered so far, in one write."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._lines = self._lines, []
        if not lines:
            return
        handler = our_handler(access_log)
        if handler is None:  # a listener came since: hand the lines to it, in order
            for _, exchange, path, status, elapsed_ms, trace_id in lines:
                _through_logging(exchange, path, status, elapsed_ms, trace_id)
            return
        stream, as_json = handler.stream, isinstance(handler.formatter, JsonFormatter)
        text = "".join(self._json(line) if as_json else self._text(line) for line in lines)
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # stderr closed or broken: nowhere to say so either
            return

    def _text(self, line: _Line) -> str:
        created, exchange, path, status, elapsed_ms, _ = line
        message, _fields = _render(exchange, path, status, elapsed_ms, fields=False)
        return f"{self._stamp(created)}{_PREFIX}{message}\n"

    @staticmethod
    def _json(line: _Line) -> str:
        created, exchange, path, status, elapsed_ms, trace_id = line
        message, fields = _render(exchange, path, status, elapsed_ms)
        body = json_head(created, "INFO", access_log.name, message)
        body.update((k, v) for k, v in fields.items() if v is not None)
        if trace_id is not None:
            body["trace_id"] = trace_id
        return orjson.dumps(body, default=str).decode() + "\n"


def _through_logging(
    exchange: Exchange, path: str, status: int, elapsed_ms: float, trace_id: str | None
) -> None:
    """One line through ``logging``; a line written after its request names the trace it
    noted then (``JsonFormatter`` would otherwise look for a span no longer current)."""
    message, fields = _render(exchange, path, status, elapsed_ms)
    if trace_id is not None:
        fields["trace_id"] = trace_id
    access_log.info("%s", message, extra=fields)


def _render(
    exchange: Exchange, path: str, status: int, elapsed_ms: float, fields: bool = True
) -> tuple[str, dict[str, object]]:
    """The line's text, and its facts for the JSON format (``observability.logs.format``)."""
    model = _clip(exchange.model) if exchange.model else "-"
    client = f" client_id={exchange.client_rid}" if exchange.client_rid else ""
    route = f" route={exchange.route}" if exchange.route is not None else ""
    message = (
        f"{exchange.rid} {_clip(path)} {status or 500} {elapsed_ms:.1f}ms model={model}"
        f"{client}{route}"
    )
    if not fields:
        return message, {}
    facts: dict[str, object] = {
        "request_id": exchange.rid,
        "route": path,
        "status": status,
        "duration_ms": round(elapsed_ms, 3),
        "model": exchange.model,
    }
    caller, served = exchange.caller, exchange.served
    if caller is not None:
        facts["key_id"] = caller.principal.key_id
        facts["project"] = caller.principal.project_id
    if served is not None:
        facts["deployment"] = served.deployment
        facts["provider"] = served.provider
        facts["attempts"] = served.attempts
        if served.refused:  # only then: a plain call's line stays as small as it was
            facts["refused"] = True
    return message, facts


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"
