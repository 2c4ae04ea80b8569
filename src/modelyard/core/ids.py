"""Object ids that say when they were made: ``<prefix>_`` + the time in milliseconds (12 hex
digits) + 128 random bits from the OS (32 hex digits), as OpenAI's ids are a prefix and hex.

The time lets a reader tell an id this gateway may have just made (and another process may
not have written yet) from one that is old or not ours, without a lookup; the random part
keeps the id unguessable."""

from __future__ import annotations

import os
import time

_TIME_DIGITS = 12  # milliseconds since the epoch fit 12 hex digits until the year 10889
_RANDOM_DIGITS = 32


def timed_id(prefix: str, now: float | None = None) -> str:
    """A new id: ``prefix`` + ``_`` + the time ``now`` (seconds; default the clock's) in ms,
    then 128 bits from ``os.urandom``."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{prefix}_{ms:0{_TIME_DIGITS}x}{os.urandom(_RANDOM_DIGITS // 2).hex()}"


def id_time(object_id: str, prefix: str) -> float | None:
    """When the id was made (seconds since the epoch), or None when it is not an id of
    ``timed_id``'s shape with this prefix (another vendor's, an older gateway's, made up)."""
    head = prefix + "_"
    digits = object_id[len(head) :]
    if (
        not object_id.startswith(head)
        or len(digits) != _TIME_DIGITS + _RANDOM_DIGITS
        or not _is_hex(digits)
    ):
        return None
    return int(digits[:_TIME_DIGITS], 16) / 1000


def _is_hex(text: str) -> bool:
    # Lowercase only, as timed_id writes them; int(..., 16) alone would take "_" and spaces.
    return all(c in "0123456789abcdef" for c in text)
