"""The ledger row is a typed record: its alias matches ``UsageRecord`` column for column, and
mypy refuses a row with swapped columns."""

from __future__ import annotations

import dataclasses
import typing
from datetime import datetime
from pathlib import Path

from mypy import api

from modelyard.store.usage import LedgerRow, UsageRecord, UsageRow

SNIPPET = Path(__file__).parents[2] / "typing" / "ledger_row_swapped.py"


def test_the_row_alias_has_the_records_fields_in_order() -> None:
    hints = typing.get_type_hints(UsageRecord)
    # The row carries the time as seconds since the epoch; every other column as the record.
    want = [
        float if hints[f.name] is datetime else hints[f.name]
        for f in dataclasses.fields(UsageRecord)
    ]
    assert list(typing.get_args(LedgerRow)) == want
    columns = [c.name for c in UsageRow.__table__.columns if c.name != "id"]
    assert columns == [f.name for f in dataclasses.fields(UsageRecord)]


def test_mypy_refuses_a_row_with_swapped_columns() -> None:
    out, err, status = api.run(
        ["--strict", "--no-error-summary", "--python-version", "3.11", str(SNIPPET)]
    )
    assert status == 1, (out, err)
    source = SNIPPET.read_text().splitlines()
    errors = [line for line in out.splitlines() if ": error:" in line]
    flagged = [source[int(line.split(":")[1]) - 1].split(":")[0] for line in errors]
    assert flagged == ["STATUS_AND_STREAM", "ENDPOINT_AND_COST"], out
    # Each swapped item is named, and nothing else.
    notes = sorted(
        line.split("note: ")[1]
        for line in out.splitlines()
        if "note: Expression tuple item" in line
    )
    assert notes == [
        'Expression tuple item 10 has type "int"; "bool" expected; ',
        'Expression tuple item 16 has type "str"; "int | None" expected; ',
        'Expression tuple item 5 has type "int"; "str" expected; ',
    ], out
