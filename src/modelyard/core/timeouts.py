"""How long to wait on an upstream, in seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallTimeouts:
    """``first_token`` bounds the wait for response headers and also each silence between
    streamed chunks, so a stalled stream ends in an error instead of hanging."""

    connect: float = 10.0
    first_token: float = 60.0
    total: float = 600.0
