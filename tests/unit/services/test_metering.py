"""The meter's ledger row: every field in its column, whatever the request's fate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

import pytest

from modelyard.core.chat import Usage
from modelyard.core.errors import RateLimited
from modelyard.services.chat import Served
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Call, Meter
from modelyard.store.journal import open_journal, replay
from modelyard.store.usage import INTERRUPTED, LedgerRow, UsageRecord
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import Scope
from modelyard.tenancy.limits_memory import MemoryLimiter

FIELDS = tuple(UsageRecord.__dataclass_fields__)


class _Prices:
    """A gateway whose only price: 1 µ$ per input token, 2 per output token."""

    def cost_of(self, provider: str, model: str, usage: Usage | None) -> int | None:
        if usage is None or (provider, model) != ("up", "gpt-x"):
            return None
        return usage.input_tokens + 2 * usage.output_tokens


def _meter(rows: list[LedgerRow]) -> Meter:
    prices = cast(Gateway, _Prices())
    return Meter(MemoryLimiter(), rows.append, lambda: prices)


async def test_a_served_request_fills_every_column() -> None:
    rows: list[LedgerRow] = []
    meter = _meter(rows)
    principal = Principal("abcdefabcdef", project_id="p1", scopes=(Scope("key:x", rpm=10),))
    before = time.time()
    ticket = await meter.admit(
        principal, Call("req-1", "/v1/messages", "chat", lambda: Usage(7, 100))
    )
    ticket.usage = Usage(10, 20, cached_input_tokens=3, reasoning_tokens=4)
    served = Served("chat", "up", "gpt-x", attempts=2, route="learned:cost:weak:0.125")
    await meter.finish(ticket, served, 200)
    await meter.finish(ticket, None, 500)  # a second finish records nothing
    after = time.time()
    (row,) = rows
    got = dict(zip(FIELDS, row, strict=True))
    created_at, latency_ms = got.pop("created_at"), got.pop("latency_ms")
    # Both are floats in the row (LedgerRow); the zip above loses the per-column types.
    assert isinstance(created_at, float) and before <= created_at <= after
    assert isinstance(latency_ms, float) and latency_ms >= 0
    assert got == {
        "request_id": "req-1",
        "day": time.strftime("%Y-%m-%d", time.gmtime(before)),
        "project_id": "p1",
        "key_id": "abcdefabcdef",
        "endpoint": "/v1/messages",
        "deployment": "chat",
        "provider": "up",
        "model": "gpt-x",
        "status": 200,
        "stream": False,
        "input_tokens": 10,
        "output_tokens": 20,
        "cached_input_tokens": 3,
        "cache_write_tokens": 0,
        "reasoning_tokens": 4,
        "cost_micros": 50,
        "ttft_ms": None,
        "attempts": 2,
        "usage_reported": True,
        "parent_id": None,
        "guardrails": None,
        "route": "learned:cost:weak:0.125",
        "bytes_in": None,  # a model call's row: the sizes are a tool step's
        "bytes_out": None,
    }
    assert ticket.headers()["x-modelyard-cost-micros"] == "50"
    assert ticket.headers()["x-ratelimit-limit-requests"] == "10"


async def test_a_refused_call_is_recorded_with_its_status_and_no_usage() -> None:
    rows: list[LedgerRow] = []
    meter = _meter(rows)
    call = Call("req-2", "/v1/chat/completions", "nope", lambda: Usage(5, 512), True, "req-1")
    ticket = await meter.admit(Principal("k", project_id="p"), call)
    await meter.finish(ticket, None, 404)
    got = dict(zip(FIELDS, rows[0], strict=True))
    assert (got["deployment"], got["provider"], got["model"]) == ("nope", None, None)
    assert (got["status"], got["stream"], got["attempts"]) == (404, True, 0)
    assert (got["input_tokens"], got["output_tokens"], got["cost_micros"]) == (0, 0, 0)
    assert got["usage_reported"] is False
    assert got["request_id"] == "req-2" and got["parent_id"] == "req-1"


async def test_with_the_journal_an_admitted_request_is_journaled_and_a_refused_one_not(
    tmp_path: Path,
) -> None:
    """The journal sees a request only once it is admitted (a request refused by its limits is
    answered, not in flight), and hands its finished row to the ledger's queue."""
    queued: list[LedgerRow] = []

    def put(row: LedgerRow) -> bool:
        queued.append(row)
        return True

    journal, _ = open_journal(tmp_path, put)
    prices = cast(Gateway, _Prices())
    meter = Meter(MemoryLimiter(), put, lambda: prices, journal)
    principal = Principal("abcdefabcdef", project_id="p1", scopes=(Scope("key:x", rpm=1),))
    ticket = await meter.admit(principal, Call("req-1", "/v1/chat/completions", "chat", Usage))
    with pytest.raises(RateLimited):
        await meter.admit(principal, Call("req-2", "/v1/chat/completions", "chat", Usage))
    in_flight = replay(sorted(tmp_path.glob("*.jnl")))
    assert [(r[0], r[9], r[3], r[4], r[6]) for r in in_flight] == [
        ("req-1", INTERRUPTED, "p1", "abcdefabcdef", "chat")
    ]
    await meter.finish(ticket, Served("chat", "up", "gpt-x"), 200)
    assert [r[0] for r in queued] == ["req-1"]
    assert replay(sorted(tmp_path.glob("*.jnl"))) == queued  # finished, not yet durable
    journal.committed(1)
    journal.close()
    assert list(tmp_path.glob("*.jnl")) == []
