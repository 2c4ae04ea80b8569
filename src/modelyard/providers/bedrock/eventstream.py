"""Incremental decoding of the AWS binary event stream (``application/vnd.amazon.eventstream``).

A message is a 12-byte prelude (total length, headers length, both big-endian uint32, then the
CRC32 of those 8 bytes), typed headers (``:event-type``, ``:message-type``, ``:content-type``,
``:exception-type``...), the payload and a CRC32 of everything before it. botocore's
``EventStreamBuffer`` does the framing and checks both CRCs; this module gives its output types
and turns every framing fault into an ``UpstreamError``, since a stream we cannot frame cannot be
trusted any further.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.eventstream import (  # type: ignore[import-untyped]
    EventStreamBuffer,
    ParserError,
)

from modelyard.core.errors import UpstreamError

# What botocore's header parser raises on bytes that are not a valid header block.
_FRAMING_ERRORS = (ParserError, KeyError, IndexError, struct.error, UnicodeDecodeError)


@dataclass(frozen=True, slots=True)
class Frame:
    """One event-stream message: its headers (string-valued ones as ``str``) and payload."""

    headers: Mapping[str, object]
    payload: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str:
        """``event``, ``exception`` or ``error`` (the last for protocol-level failures)."""
        return self.header(":message-type") or "event"

    @property
    def event_type(self) -> str | None:
        return self.header(":event-type")


class EventStreamDecoder:
    """Feed bytes as they arrive, in pieces of any size; get whole, CRC-checked frames back."""

    __slots__ = ("_buffer", "_label")

    def __init__(self, label: str) -> None:
        self._buffer: Any = EventStreamBuffer()
        self._label = label

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buffer.add_data(chunk)
        frames: list[Frame] = []
        try:
            for message in self._buffer:
                frames.append(Frame(dict(message.headers), bytes(message.payload)))
        except _FRAMING_ERRORS as exc:
            raise UpstreamError(
                f"{self._label}: the upstream sent a corrupt event-stream frame "
                f"({type(exc).__name__})"
            ) from exc
        return frames
