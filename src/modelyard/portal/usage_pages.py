"""Usage and cost: totals per project, key, deployment or model; charts per hour or day
(requests, tokens, cost, errors, p50/p95 latency); budgets and how much of each is spent; the
ledger as CSV. Every figure is aggregated by the database through ``TenancyAdmin``, which
narrows a query to what the caller may see (an owner: its project; a member: its key)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from starlette.responses import Response, StreamingResponse

from modelyard.core.errors import InvalidRequest, PermissionDenied
from modelyard.portal.charts import Chart, bar_chart
from modelyard.portal.web import Ctx, page
from modelyard.services import admin_models as models
from modelyard.services.tenancy import TenancyAdmin
from modelyard.services.usage_export import records_csv, rows_csv
from modelyard.store.usage_series import HOURLY_FIELDS, Point
from modelyard.tenancy.model import UsageFilter

GROUPS: Final = ("model", "deployment", "project", "key")
BUCKETS: Final = ("day", "hour")
RANGES: Final[Mapping[str, timedelta]] = MappingProxyType(
    {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
)
CSV_ROWS = 10_000  # ledger rows (per-request detail)
CSV_HOURS = 100_000  # rollup rows (per hour, project, key, deployment, model)


def _admin(ctx: Ctx) -> TenancyAdmin:
    if ctx.root.admin is None:
        raise PermissionDenied("usage needs a store ('modelyard serve')")
    return ctx.root.admin


def _choice(ctx: Ctx, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = ctx.field(name) or default
    if value not in allowed:
        raise InvalidRequest(f"{name}: {value[:40]!r} is not one of {', '.join(allowed)}")
    return value


def _filter(ctx: Ctx, now: datetime) -> tuple[UsageFilter, dict[str, str]]:
    span = _choice(ctx, "range", tuple(RANGES), "7d")
    project = ctx.field("project")[:64] or None
    deployment = ctx.field("deployment")[:128] or None
    where = UsageFilter(project, None, deployment, now - RANGES[span], None)
    return where, {"range": span, "project": project or "", "deployment": deployment or ""}


def _charts(points: list[Point]) -> list[Chart]:
    def ms(v: float) -> str:
        return f"{v:,.0f} ms"

    def dollars(v: float) -> str:
        return f"${v:,.6f}"

    def of(values: list[float | None]) -> list[tuple[str, float | None]]:
        return [(p.bucket, v) for p, v in zip(points, values, strict=True)]

    return [
        bar_chart("Requests", of([p.requests for p in points])),
        bar_chart(
            "Tokens (input + output)", of([p.input_tokens + p.output_tokens for p in points])
        ),
        bar_chart("Cost", of([p.cost_micros / 1e6 for p in points]), dollars),
        bar_chart("Errors", of([p.errors for p in points])),
        bar_chart("Latency p50", of([p.p50_ms for p in points]), ms),
        bar_chart("Latency p95", of([p.p95_ms for p in points]), ms),
    ]


async def _budgets(ctx: Ctx, admin: TenancyAdmin, now: datetime) -> list[dict[str, Any]]:
    """Each visible project with a budget: what it allows today and this month, and spent."""
    if ctx.user.role == "member":
        return []
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    shown = []
    for project in await admin.projects(ctx.user.principal):
        limits = project.limits
        if limits.daily_budget_micros is None and limits.monthly_budget_micros is None:
            continue
        spent = []
        for since in (day, month):
            rows = await admin.usage_totals(
                ctx.user.principal, "project", UsageFilter(project.id, since=since)
            )
            spent.append(sum(r["cost_micros"] for r in rows))
        shown.append(
            {
                "project": project.id,
                "daily": models.usd(limits.daily_budget_micros),
                "daily_spent": models.usd(spent[0]),
                "daily_share": _share(spent[0], limits.daily_budget_micros),
                "monthly": models.usd(limits.monthly_budget_micros),
                "monthly_spent": models.usd(spent[1]),
                "monthly_share": _share(spent[1], limits.monthly_budget_micros),
            }
        )
    return shown


def _share(spent: int, budget: int | None) -> float | None:
    return None if not budget else min(1.0, spent / budget)


@page
async def usage(ctx: Ctx) -> Response:
    admin = _admin(ctx)
    now = datetime.now(UTC)
    by = _choice(ctx, "by", GROUPS, "model")
    bucket = _choice(ctx, "bucket", BUCKETS, "day")
    where, chosen = _filter(ctx, now)
    rows = await admin.usage_totals(ctx.user.principal, by, where)  # type: ignore[arg-type]
    points = await admin.usage_series(ctx.user.principal, bucket, where)  # type: ignore[arg-type]
    totals = models.UsageTotals.of_rows(rows)
    return ctx.render(
        "usage.html",
        by=by,
        bucket=bucket,
        groups=GROUPS,
        ranges=tuple(RANGES),
        chosen=chosen,
        rows=[{**r, "cost_usd": models.usd(r["cost_micros"])} for r in rows],
        totals=totals,
        charts=_charts(points),
        budgets=await _budgets(ctx, admin, now),
        query=str(ctx.request.query_params),
        csv_rows=CSV_ROWS,
    )


@page
async def usage_csv(ctx: Ctx) -> Response:
    """The range per hour, project, key, deployment and model, from the rollup."""
    admin = _admin(ctx)
    where, _ = _filter(ctx, datetime.now(UTC))
    hours = await admin.usage_hours(ctx.user.principal, where, CSV_HOURS)
    return _csv("usage-hourly.csv", rows_csv(HOURLY_FIELDS, hours), len(hours) >= CSV_HOURS)


@page
async def usage_rows_csv(ctx: Ctx) -> Response:
    """Per-request detail: the ledger's rows of the range, the first ``CSV_ROWS``."""
    admin = _admin(ctx)
    where, _ = _filter(ctx, datetime.now(UTC))
    records = await admin.usage_records(ctx.user.principal, where, CSV_ROWS)
    return _csv("usage.csv", records_csv(records), len(records) >= CSV_ROWS)


def _csv(name: str, body: Iterator[str], truncated: bool) -> Response:
    headers = {
        "content-disposition": f'attachment; filename="{name}"',
        "x-modelyard-truncated": "true" if truncated else "false",
    }
    return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers=headers)
