"""Encoding of the AWS binary event stream, written from the format's description.

A message is::

    [total length: uint32][headers length: uint32][prelude CRC32: uint32]
    [headers][payload][message CRC32: uint32]

all big-endian. The prelude CRC covers the first 8 bytes; the message CRC covers everything
before it, prelude CRC included. Each header is a 1-byte name length, the name, a 1-byte value
type (7 = UTF-8 string) and, for strings, a 2-byte length and the value. ConverseStream sends
events (``:message-type: event``, ``:event-type: contentBlockDelta``...) with a JSON payload
that carries a ``p`` field of padding (so sizes do not leak content), and failures as
``:message-type: exception`` with ``:exception-type`` in lower camel case.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Any

import orjson

_STRING = 7
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", _STRING, len(raw_value))
        + raw_value
    )


def event_frame(event_type: str, payload: Mapping[str, Any], serial: int = 0) -> bytes:
    padded = {**payload, "p": _PADDING[: 5 + serial % 40]}
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_frame(headers, orjson.dumps(padded))


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_frame(headers, orjson.dumps({"message": message}))
