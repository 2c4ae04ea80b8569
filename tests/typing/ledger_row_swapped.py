"""Checked by mypy in ``tests/unit/store/test_ledger_row_types.py``, never run: the first row is
right, the second has its ``status`` and ``stream`` columns swapped, the third its ``endpoint``
and ``cost_micros``; mypy must refuse exactly those two."""

from __future__ import annotations

from modelyard.store.usage import LedgerRow

RIGHT: LedgerRow = (
    "req-1", 0.0, "2026-12-06", "p", "k", "/v1/chat/completions", "chat", "up", "m",
    200, False, 1, 2, 0, 0, 0, 5, 1.5, None, 1, True, None, None, None, None, None,
)  # fmt: skip
STATUS_AND_STREAM: LedgerRow = (
    "req-1", 0.0, "2026-12-06", "p", "k", "/v1/chat/completions", "chat", "up", "m",
    False, 200, 1, 2, 0, 0, 0, 5, 1.5, None, 1, True, None, None, None, None, None,
)  # fmt: skip
ENDPOINT_AND_COST: LedgerRow = (
    "req-1", 0.0, "2026-12-06", "p", "k", 5, "chat", "up", "m",
    200, False, 1, 2, 0, 0, 0, "/v1/chat/completions", 1.5, None, 1, True,
    None, None, None, None, None,
)  # fmt: skip
