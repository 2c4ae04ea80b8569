"""Incremental Server-Sent Events decoding (the text/event-stream format), fed raw bytes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    """One event as the wire carried it. Not frozen: it is made once per event and read once by
    the codec, and a frozen dataclass's ``__init__`` costs twice as much."""

    data: str
    event: str | None = None


class SSEDecoder:
    """Feed bytes as they arrive; get whole events back. Handles CRLF and multi-line data."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if self._data or self._event is not None or b"\r" in buffer:
            return self._feed_lines(buffer)
        # What upstreams send, nearly always: events of one ``data: `` line each, ended by a
        # blank line. Each is cut whole; any other block (comments, ``event:``, several data
        # lines, blank-line runs) goes through the line-by-line reading below. What follows
        # the last blank line is the start of an event still arriving: kept as bytes.
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()
        events: list[SSEEvent] = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:
                events.append(SSEEvent(block[6:].decode("utf-8")))
            else:
                events += self._lines_of(block)
        return events

    def _lines_of(self, block: bytes) -> list[SSEEvent]:
        """The events of one whole block (its lines and the blank line that ended it)."""
        rest = self._buffer
        events = self._feed_lines(block + b"\n\n")
        self._buffer = rest
        return events

    def _feed_lines(self, buffer: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            event = self._line(line)
            if event is not None:
                events.append(event)
        self._buffer = buffer[start:]
        return events

    @property
    def pending(self) -> bool:
        """True when bytes or fields of an unfinished event are buffered."""
        return bool(self._buffer.strip()) or bool(self._data)

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            if not self._data and self._event is None:
                return None
            event = SSEEvent("\n".join(self._data), self._event)
            self._data = []
            self._event = None
            return event
        if line.startswith(b":"):
            return None
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8"))
        elif name == b"event":
            self._event = value.decode("utf-8")
        return None
