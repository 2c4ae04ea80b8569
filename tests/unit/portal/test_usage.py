"""Usage over time, aggregated by the database: buckets, totals, latency percentiles; the
portal's usage page, its charts and CSV, narrowed to what the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelyard.portal.charts import bar_chart
from modelyard.store import open_store
from modelyard.store.usage import UsageLedger, UsageRecord, ledger_row
from modelyard.store.usage_series import series
from modelyard.tenancy.model import UsageFilter
from tests.unit.admin.conftest import wait_for
from tests.unit.portal.conftest import ADMIN_KEY, Admin, sign_in

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


async def test_series_per_hour_and_day_with_nearest_rank_percentiles(tmp_path: Path):
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    try:
        first = [_record(T0 + timedelta(seconds=i), float(i + 1)) for i in range(20)]
        second = [_record(T0 + timedelta(hours=1), 500.0, status=500)]
        other = [_record(T0, 9999.0, project="beta")]
        async with store.transaction() as session:
            await UsageLedger(session).append([ledger_row(r) for r in first + second + other])
        async with store.transaction() as session:
            hours = await series(session, "hour", UsageFilter("alpha"))
            days = await series(session, "day", UsageFilter("alpha"))
    finally:
        await store.aclose()
    assert [p.bucket for p in hours] == ["2026-03-01 10", "2026-03-01 11"]
    assert (hours[0].requests, hours[0].errors, hours[0].cost_micros) == (20, 0, 2000)
    assert (hours[0].p50_ms, hours[0].p95_ms) == (10.0, 19.0)  # ranks 10 and 19 of 1..20
    assert (hours[1].errors, hours[1].p50_ms, hours[1].p95_ms) == (1, 500.0, 500.0)
    assert [(p.bucket, p.requests, p.input_tokens) for p in days] == [("2026-03-01", 21, 210)]


def test_a_chart_scales_bars_to_the_largest_value_and_leaves_gaps_empty():
    chart = bar_chart("Requests", [("a", 5), ("b", 10), ("c", None)])
    heights = [b.height for b in chart.bars]
    assert heights[1] == 2 * heights[0] and heights[2] == 0
    assert chart.top == "10" and chart.bars[2].shown == "no data"
    assert bar_chart("Nothing", []).empty


def test_the_usage_page_charts_and_exports_what_the_caller_may_see(admin: Admin):
    admin.project("alpha")
    admin.project("beta")
    owner = admin.key("alpha", "owner")["secret"]
    mine, theirs = admin.key("alpha")["secret"], admin.key("beta")["secret"]
    for key in (mine, mine, theirs):
        assert admin.chat(key).status_code == 200
    wait_for(
        lambda: admin.ok(ADMIN_KEY, "GET", "/admin/v1/usage?by=project")["totals"]["requests"] == 3,
        "the ledger written",
    )
    client = admin.client
    sign_in(client, owner)
    page = client.get("/portal/usage?bucket=hour&by=key")
    assert page.status_code == 200, page.text
    assert "<strong>2</strong> requests" in page.text  # alpha's two, not beta's
    assert page.text.count('<svg class="chart"') == 6 and '<rect class="bar" x="' in page.text
    assert client.get("/portal/usage?project=beta").status_code == 403
    exported = client.get("/portal/usage.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert len(exported.text.strip().splitlines()) == 1 + 2
    assert client.get("/portal/usage?bucket=week").status_code == 400
