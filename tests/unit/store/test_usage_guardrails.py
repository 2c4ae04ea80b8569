"""Revision 0008 adds ``usage_records.guardrails``; usage queries filter by a guard's name
(``*``: any verdict), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from modelyard.store import open_store
from modelyard.store.usage import LedgerRow, UsageLedger
from modelyard.tenancy.model import UsageFilter


def _row(rid: str, guardrails: str | None) -> LedgerRow:
    return (
        rid, time.time(), "2026-12-06", "p", "k", "/v1/chat/completions", "chat", "up", "m",
        200 if guardrails is None or ":block:" not in guardrails else 400,
        False, 1, 2, 0, 0, 0, 5, 1.5, None, 1, True, None, guardrails, None, None, None,
    )  # fmt: skip


async def test_verdicts_are_stored_and_filterable_by_guard(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        async with store.transaction() as session:
            await UsageLedger(session).append(
                [
                    _row("plain", None),
                    _row("pii", "pii:input:redact:email:1.00, pii:output:redact:card:1.00"),
                    _row("inj", "prompt_injection:input:block:prompt_injection:0.97"),
                    _row("two", "words:output:flag:denied:1.00, pii_x:input:flag:ip:1.00"),
                ]
            )
        async with store.transaction() as session:
            ledger = UsageLedger(session)

            async def ids(guard: str) -> list[str]:
                found = await ledger.records(UsageFilter(guardrail=guard))
                return sorted(r.request_id for r in found)

            assert await ids("pii") == ["pii"]  # not pii_x: "_" is no wildcard
            assert await ids("pii_x") == ["two"]
            assert await ids("prompt_injection") == ["inj"]
            assert await ids("words") == ["two"]
            assert await ids("*") == ["inj", "pii", "two"]
            grouped = await ledger.grouped("status", UsageFilter(guardrail="*"))
            by_status = {g["status"]: g["requests"] for g in grouped}
            assert by_status == {200: 2, 400: 1}
            (pii,) = await ledger.records(UsageFilter(guardrail="pii"))
            assert pii.guardrails == "pii:input:redact:email:1.00, pii:output:redact:card:1.00"
    finally:
        await store.aclose()
