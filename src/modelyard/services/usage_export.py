"""The usage ledger as CSV (the admin API's ``usage.csv`` and ``modelyard usage --records``).

A cell that a spreadsheet would run as a formula is quoted; money is shown both as integer
micro-dollars and as a decimal dollar string (``cost_usd``, the last column).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from modelyard.services.admin_models import stamp, usd
from modelyard.store.usage import UsageRecord

CSV_FIELDS: tuple[str, ...] = (*UsageRecord.__dataclass_fields__, "cost_usd")


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(header))
    writer.writerows(_safe_row(r) for r in rows)
    return out.getvalue()


def record_row(record: UsageRecord) -> list[Any]:
    values = asdict(record)
    values["created_at"] = stamp(record.created_at)
    return [*values.values(), usd(record.cost_micros)]


def records_csv(records: Iterable[UsageRecord], chunk: int = 500) -> Iterator[str]:
    """The ledger as CSV, header first, in chunks of ``chunk`` rows (for a streamed body)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for n, record in enumerate(records, 1):
        writer.writerow(_safe_row(record_row(record)))
        if n % chunk == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def rows_csv(
    header: Iterable[str], rows: Iterable[Iterable[Any]], chunk: int = 500
) -> Iterator[str]:
    """Any rows as CSV, header first, in chunks of ``chunk`` rows (for a streamed body)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(header))
    for n, row in enumerate(rows, 1):
        writer.writerow(_safe_row(row))
        if n % chunk == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _safe_row(values: Iterable[Any]) -> list[Any]:
    # A cell starting with = + - @ is run as a formula by spreadsheets; names come from
    # configs and upstreams, so quote such text cells (numbers are left alone).
    return ["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in values]
