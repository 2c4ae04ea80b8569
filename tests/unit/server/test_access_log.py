"""The batched access log writes the lines ``logging`` would, later and in one write."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from modelyard.observability.logs import TEXT_FORMAT, JsonFormatter, configure_logging
from modelyard.server.access_log import AccessLog, access_log
from modelyard.server.middleware import Exchange
from modelyard.services.chat import Served


class Stream(io.StringIO):
    """stderr as the handler sees it: counts writes, and tells when it was flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.flushed = asyncio.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushed.set()


@pytest.fixture
def stream() -> Iterator[Stream]:
    """The served set-up: our one stderr handler on the root, writing to ``Stream``."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    for handler in before:
        root.removeHandler(handler)
    out = Stream()
    yield out
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in before:
        root.addHandler(handler)
    root.setLevel(level)


def _use(stream: Stream, fmt: str, alone: bool = True) -> None:
    """Our handler on the root, writing to ``stream``; ``alone``: without pytest's capturing
    handlers, as when served."""
    configure_logging("info", fmt)
    root = logging.getLogger()
    [handler] = [h for h in root.handlers if h.get_name() == "modelyard"]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    if alone:
        for other in [h for h in root.handlers if h is not handler]:
            root.removeHandler(other)


def _exchange() -> Exchange:
    ex = Exchange("req_0001", "client-7")
    ex.model, ex.route = "bench", "strong"
    ex.caller = SimpleNamespace(principal=SimpleNamespace(key_id="k1", project_id="p1"))  # type: ignore[assignment]
    ex.served = Served("bench", "fake", "bench-model", attempts=2)
    return ex


def _as_logging_would(formatter: logging.Formatter, created: float, **extra: Any) -> str:
    message = "req_0001 /v1/chat/completions 200 12.3ms model=bench client_id=client-7 route=strong"
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 1, message, (), None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.__dict__.update(extra)
    return formatter.format(record)


@contextlib.contextmanager
def _listening() -> Iterator[list[logging.LogRecord]]:
    """Another handler on the access logger for the block: the records it got."""
    seen: list[logging.LogRecord] = []

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    listener = Listener()
    access_log.addHandler(listener)
    try:
        yield seen
    finally:
        access_log.removeHandler(listener)


async def test_text_lines_are_logging_s_lines_written_together(stream: Stream) -> None:
    _use(stream, "text")
    log = AccessLog(flush_after_s=3600.0)
    for _ in range(3):
        log.add(_exchange(), "/v1/chat/completions", 200, 12.34, traced=False)
    assert stream.getvalue() == ""  # not yet: the request did not pay for the write
    log.flush()
    lines = stream.getvalue().splitlines()
    assert stream.writes == 1 and len(lines) == 3
    created = log_time(lines[0])
    assert lines[0] == _as_logging_would(logging.Formatter(TEXT_FORMAT), created)


def log_time(line: str) -> float:
    """The time a text line carries, back as seconds (to build logging's line for the same)."""
    import time

    stamp, millis = line[:19], int(line[20:23])
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + millis / 1000 + 0.0001


async def test_json_lines_carry_the_request_s_facts(stream: Stream) -> None:
    _use(stream, "json")
    log = AccessLog(flush_after_s=3600.0)
    log.add(_exchange(), "/v1/chat/completions", 200, 12.34, traced=False)
    log.flush()
    line = orjson.loads(stream.getvalue())
    fields = {
        "request_id": "req_0001",
        "route": "/v1/chat/completions",
        "status": 200,
        "duration_ms": 12.34,
        "model": "bench",
        "key_id": "k1",
        "project": "p1",
        "deployment": "bench",
        "provider": "fake",
        "attempts": 2,
    }
    created = _created_of(line["ts"])
    expected = orjson.loads(_as_logging_would(JsonFormatter(), created, **fields))
    assert line == expected


async def test_a_refused_call_s_line_says_so_and_only_then(stream: Stream) -> None:
    _use(stream, "json")
    log = AccessLog(flush_after_s=3600.0)
    refused = _exchange()
    assert refused.served is not None
    refused.served.refused = True  # as the observer marks a refusal
    log.add(_exchange(), "/v1/chat/completions", 200, 1.0, traced=False)
    log.add(refused, "/v1/chat/completions", 200, 1.0, traced=False)
    log.flush()
    plain, marked = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert "refused" not in plain
    assert marked["refused"] is True
    assert {k: v for k, v in marked.items() if k not in ("refused", "ts")} == {
        k: v for k, v in plain.items() if k != "ts"
    }


def _created_of(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts).timestamp() + 0.0001


async def test_the_timer_writes_the_batch(stream: Stream) -> None:
    _use(stream, "text")
    log = AccessLog(flush_after_s=0.0)
    log.add(_exchange(), "/v1/chat/completions", 200, 1.0, traced=False)
    await asyncio.wait_for(stream.flushed.wait(), 60)
    assert "req_0001" in stream.getvalue()


async def test_a_full_batch_is_written_at_once(stream: Stream) -> None:
    _use(stream, "text")
    log = AccessLog(flush_after_s=3600.0, max_lines=4)
    for _ in range(4):
        log.add(_exchange(), "/v1/chat/completions", 200, 1.0, traced=False)
    assert len(stream.getvalue().splitlines()) == 4 and stream.writes == 1


async def test_another_listener_gets_each_line_as_it_happens(
    stream: Stream, caplog: pytest.LogCaptureFixture
) -> None:
    _use(stream, "text", alone=False)
    caplog.set_level(logging.INFO, access_log.name)  # a second handler on the root
    log = AccessLog(flush_after_s=3600.0)
    log.add(_exchange(), "/v1/chat/completions", 429, 1.0, traced=False)
    [record] = [r for r in caplog.records if r.name == access_log.name]
    assert record.getMessage().startswith("req_0001 /v1/chat/completions 429 1.0ms")
    assert record.__dict__["project"] == "p1"


async def test_a_handler_added_later_is_seen_at_the_next_line(stream: Stream) -> None:
    _use(stream, "text")
    log = AccessLog(flush_after_s=3600.0)
    log.add(_exchange(), "/v1/chat/completions", 200, 1.0, traced=False)  # batched
    with _listening() as seen:
        log.add(_exchange(), "/v1/embeddings", 200, 1.0, traced=False)
        assert [r.getMessage().split()[1] for r in seen] == ["/v1/embeddings"]
        log.flush()  # the batched line goes to the listener too, rather than past it
        assert [r.getMessage().split()[1] for r in seen][-1] == "/v1/chat/completions"


class Broken(Stream):
    def write(self, text: str) -> int:
        raise OSError("stderr is gone")


async def test_a_broken_stderr_drops_the_batch_and_serving_goes_on(stream: Stream) -> None:
    _use(Broken(), "text")  # ``stream``: only for the root's handlers, restored after
    log = AccessLog(flush_after_s=3600.0)
    log.add(_exchange(), "/v1/chat/completions", 200, 1.0, traced=False)
    log.flush()  # nothing raised into the server
    log.add(_exchange(), "/v1/chat/completions", 200, 1.0, traced=False)
    assert len(log._lines) == 1  # the next batch starts afresh


async def test_lines_batched_before_a_listener_came_keep_their_trace(stream: Stream) -> None:
    _use(stream, "json")
    log = AccessLog(flush_after_s=3600.0)
    log._lines.append((1.0, _exchange(), "/v1/chat/completions", 200, 1.0, "ab" * 16))
    with _listening() as seen:
        log.flush()
    assert [r.__dict__.get("trace_id") for r in seen] == ["ab" * 16]
