"""The ledger per hour and day, aggregated by the database (SQLite and PostgreSQL): buckets,
totals, nearest-rank latency percentiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard.store import Store
from modelyard.store.usage import UsageLedger, UsageRecord, ledger_row
from modelyard.store.usage_series import series
from modelyard.tenancy.model import UsageFilter

T0 = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def _record(at: datetime, latency: float, status: int = 200, project: str = "alpha") -> UsageRecord:
    return UsageRecord(
        request_id=f"r-{at.timestamp()}-{latency}",
        created_at=at,
        day=at.date().isoformat(),
        project_id=project,
        key_id="k1",
        endpoint="/v1/chat/completions",
        deployment="chat",
        provider="fake",
        model="gpt-4o-mini",
        status=status,
        stream=False,
        input_tokens=10,
        output_tokens=5,
        cached_input_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_micros=100,
        latency_ms=latency,
        ttft_ms=None,
        attempts=1,
        usage_reported=True,
    )


async def test_series_per_hour_and_day_with_nearest_rank_percentiles(store: Store):
    first = [_record(T0 + timedelta(seconds=i), float(i + 1)) for i in range(20)]
    second = [_record(T0 + timedelta(hours=1), 500.0, status=500)]
    other = [_record(T0, 9999.0, project="beta")]
    async with store.transaction() as session:
        await UsageLedger(session).append([ledger_row(r) for r in first + second + other])
    async with store.transaction() as session:
        hours = await series(session, "hour", UsageFilter("alpha"))
        days = await series(session, "day", UsageFilter("alpha"))
    assert [p.bucket for p in hours] == ["2026-03-01 10", "2026-03-01 11"]
    assert (hours[0].requests, hours[0].errors, hours[0].cost_micros) == (20, 0, 2000)
    assert (hours[0].p50_ms, hours[0].p95_ms) == (10.0, 19.0)  # ranks 10 and 19 of 1..20
    assert (hours[1].errors, hours[1].p50_ms, hours[1].p95_ms) == (1, 500.0, 500.0)
    assert [(p.bucket, p.requests, p.input_tokens) for p in days] == [("2026-03-01", 21, 210)]
