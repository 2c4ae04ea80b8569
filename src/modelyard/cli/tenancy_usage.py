"""``modelyard usage``: totals grouped by model, deployment, day, project or key (a table, JSON
or CSV), or with ``--records`` the per-request ledger rows (JSON or CSV, as the admin API's
``usage.csv``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.services.tenancy import TenancyAdmin

RunWithAdmin = Callable[[Callable[["TenancyAdmin"], Awaitable[Any]]], Any]
DEFAULT_RECORDS = 10_000  # rows of --records without --limit
_COLUMNS = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")


def run_usage(args: argparse.Namespace, with_admin: RunWithAdmin) -> int:
    from datetime import UTC, datetime

    from modelyard.cli.tenancy import operator, print_json, shown
    from modelyard.services import admin_models as models
    from modelyard.services import usage_export as export
    from modelyard.services.admin_fields import parse

    if args.steps is not None:
        return _steps(args, with_admin)
    params = {
        name: value
        for name in ("project", "key", "deployment", "since", "until", "guardrail")
        if (value := getattr(args, name)) is not None
    }
    given = {**params, "by": args.by, "limit": str(args.limit or DEFAULT_RECORDS)}
    query = parse(models.UsageQuery, given, "query", datetime.now(UTC))
    where = query.filter()
    if args.records:
        records = with_admin(lambda a: a.usage_records(operator(), where, query.limit))
        if args.json:
            print_json(
                [dict(zip(export.CSV_FIELDS, export.record_row(r), strict=True)) for r in records]
            )
        else:
            sys.stdout.writelines(export.records_csv(records))
        return 0
    grouped = with_admin(lambda a: a.usage(operator(), query.by, where))
    rows = [shown(models.UsageRow.of_row(r)) for r in grouped]
    totals = shown(models.UsageTotals.of_rows(rows))
    if args.json:
        print_json({"by": query.by, "data": rows, "totals": totals})
    elif args.csv:
        header = (query.by, *_COLUMNS, "cost_micros")
        sys.stdout.write(export.csv_text(header, ([r.get(h) for h in header] for r in rows)))
    else:
        _table(query.by, rows, totals)
    return 0


def _steps(args: argparse.Namespace, with_admin: RunWithAdmin) -> int:
    from modelyard.cli.tenancy import operator, print_json
    from modelyard.services.usage_steps import UsageSteps, tree_lines

    records = with_admin(lambda a: a.usage_steps(operator(), args.steps))
    if not records:
        print(f"no ledger steps of {args.steps!r}", file=sys.stderr)
        return 1
    found = UsageSteps.of(args.steps, records)
    if args.json:
        print_json(found.model_dump())
    else:
        print("\n".join(tree_lines(found)))
    return 0


def _table(by: str, rows: list[dict[str, Any]], totals: dict[str, Any]) -> None:
    if not rows:
        print("no usage recorded for this selection")
        return
    from modelyard.services.usage_steps import status_text

    def group(value: Any) -> str:
        if value is None:
            return "-"
        return status_text(value) if by == "status" else str(value)

    lines = [[group(r[by]), *(_cell(r, c) for c in _COLUMNS)] for r in rows]
    lines.append(["TOTAL", *(_cell(totals, c) for c in _COLUMNS)])
    header = [by, "requests", "errors", "input tok", "output tok", "cost $"]
    widths = [max(len(x[i]) for x in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        first = line[0].ljust(widths[0])
        print("  ".join([first, *(v.rjust(w) for v, w in zip(line[1:], widths[1:], strict=True))]))


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "-" if value is None else str(value)
