"""Shadow traffic at a glance, per deployment: how many requests were mirrored, the primary's
and the candidate's mean latency, tokens and cost, the candidate's errors, how often each side
declined (refusals; one grouped query), and the newest pairs. Grading the pairs is
``modelyard eval shadow``'s business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from modelyard.store.shadow_records import ShadowRecord, ShadowRecordRow, ShadowRecords


@dataclass(frozen=True, slots=True)
class ShadowTotals:
    deployment: str
    pairs: int
    candidate_errors: int
    primary_latency_ms: float
    candidate_latency_ms: float
    primary_tokens: int
    candidate_tokens: int
    primary_cost_micros: int
    candidate_cost_micros: int
    primary_refusals: int = 0
    candidate_refusals: int = 0


async def shadow_totals(session: AsyncSession, since: datetime) -> list[ShadowTotals]:
    r = ShadowRecordRow
    query = (
        select(
            r.deployment,
            func.count(),
            func.sum(func.cast(r.candidate_error.is_not(None), Integer)),
            func.avg(r.primary_latency_ms),
            func.avg(r.candidate_latency_ms),
            func.sum(r.primary_input_tokens + r.primary_output_tokens),
            func.sum(r.candidate_input_tokens + r.candidate_output_tokens),
            func.sum(r.primary_cost_micros),
            func.sum(r.candidate_cost_micros),
            func.sum(func.cast(r.primary_refusal.is_not(None), Integer)),
            func.sum(func.cast(r.candidate_refusal.is_not(None), Integer)),
        )
        .where(r.created_at >= since)
        .group_by(r.deployment)
        .order_by(r.deployment)
    )
    found = []
    for row in (await session.execute(query)).all():
        counts = [int(v or 0) for v in (row[1], row[2], *row[5:11])]
        found.append(
            ShadowTotals(
                row[0], counts[0], counts[1], float(row[3] or 0), float(row[4] or 0), *counts[2:]
            )
        )
    return found


async def newest_pairs(session: AsyncSession, deployment: str, limit: int) -> list[ShadowRecord]:
    return await ShadowRecords(session).list(deployment, limit=limit)
