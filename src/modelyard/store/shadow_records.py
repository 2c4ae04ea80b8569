"""The ``shadow_records`` aggregate: a deployment's primary answer beside a candidate's answer
to the same request, appended in batches, read back by ``modelyard eval shadow``.

An answer the model declined keeps its refusal apart from its text (``*_refusal``, revision
0020): ``*_output`` is what it answered (its text, its tool calls as lines), ``*_refusal`` the
words it declined with, None when it did not (the ``refused`` mark). Records written before
0020 have no mark and keep a refusal in their text, after it."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, Integer, String, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base


class ShadowRecordRow(Base):
    __tablename__ = "shadow_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    request_id: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    request: Mapped[str] = mapped_column(Text)
    primary_provider: Mapped[str] = mapped_column(String(128))
    primary_model: Mapped[str] = mapped_column(String(256))
    primary_output: Mapped[str] = mapped_column(Text)
    primary_latency_ms: Mapped[float] = mapped_column(Float)
    primary_input_tokens: Mapped[int] = mapped_column(Integer)
    primary_output_tokens: Mapped[int] = mapped_column(Integer)
    primary_cost_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    candidate_provider: Mapped[str] = mapped_column(String(128))
    candidate_model: Mapped[str] = mapped_column(String(256))
    candidate_output: Mapped[str | None] = mapped_column(Text, nullable=True)
    candidate_latency_ms: Mapped[float] = mapped_column(Float)
    candidate_input_tokens: Mapped[int] = mapped_column(Integer)
    candidate_output_tokens: Mapped[int] = mapped_column(Integer)
    candidate_cost_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    candidate_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    primary_refusal: Mapped[str | None] = mapped_column(Text, nullable=True)
    candidate_refusal: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True, slots=True)
class ShadowRecord:
    """One mirrored request. ``request`` is the chat request as JSON (messages and options)."""

    created_at: datetime
    request_id: str
    deployment: str
    request: str
    primary_provider: str
    primary_model: str
    primary_output: str
    primary_latency_ms: float
    primary_input_tokens: int
    primary_output_tokens: int
    primary_cost_micros: int | None
    candidate_provider: str
    candidate_model: str
    candidate_output: str | None
    candidate_latency_ms: float
    candidate_input_tokens: int
    candidate_output_tokens: int
    candidate_cost_micros: int | None
    candidate_error: str | None
    primary_refusal: str | None = None  # the primary declined, in these words
    candidate_refusal: str | None = None  # ... the candidate

    @property
    def primary_refused(self) -> bool:
        return self.primary_refusal is not None

    @property
    def candidate_refused(self) -> bool:
        return self.candidate_refusal is not None


_FIELDS = tuple(ShadowRecord.__dataclass_fields__)
_values = operator.attrgetter(*_FIELDS)


class ShadowRecords:
    """Appends and reads within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, records: Sequence[ShadowRecord]) -> None:
        if records:
            rows = [dict(zip(_FIELDS, _values(r), strict=True)) for r in records]
            await self._session.execute(insert(ShadowRecordRow), rows)

    async def list(
        self, deployment: str, *, limit: int = 1000, since: datetime | None = None
    ) -> list[ShadowRecord]:
        """The newest ``limit`` records of ``deployment``, oldest first."""
        query = select(ShadowRecordRow).where(ShadowRecordRow.deployment == deployment)
        if since is not None:
            query = query.where(ShadowRecordRow.created_at >= since)
        query = query.order_by(ShadowRecordRow.id.desc()).limit(limit)
        rows = (await self._session.scalars(query)).all()
        return [ShadowRecord(**{f: getattr(row, f) for f in _FIELDS}) for row in reversed(rows)]
