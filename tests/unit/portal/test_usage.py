"""Usage over time, aggregated by the database: buckets, totals, latency percentiles; the
portal's usage page, its charts and CSV, narrowed to what the caller may see."""

from __future__ import annotations

import csv
import io

from modelyard.portal.charts import bar_chart
from tests.unit.admin.conftest import wait_for
from tests.unit.portal.conftest import ADMIN_KEY, Admin, sign_in


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
    exported = client.get("/portal/usage-rows.csv")  # per request
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert len(exported.text.strip().splitlines()) == 1 + 2
    hourly = client.get("/portal/usage.csv")  # per hour and key, from the rollup
    assert hourly.status_code == 200 and hourly.headers["x-modelyard-truncated"] == "false"
    lines = list(csv.DictReader(io.StringIO(hourly.text)))
    assert sum(int(line["requests"]) for line in lines) == 2
    assert {line["project_id"] for line in lines} == {"alpha"}
    assert client.get("/portal/usage?bucket=week").status_code == 400
