"""The ``responses`` aggregate and the ``conversations`` aggregate with its items.

Bodies and items are JSON text the store never reads: what they mean is the services'
business. Every read and delete is by id *and* owner, so a row of another owner is simply not
found (the API answers 404 without telling whether it exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base


class ResponseRow(Base):
    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    previous_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    input_items: Mapped[str] = mapped_column(Text)


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "metadata" is taken by the declarative base.
    meta: Mapped[str] = mapped_column("metadata", Text)


class ConversationItemRow(Base):
    __tablename__ = "conversation_items"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    item_id: Mapped[str] = mapped_column(String(64))
    item: Mapped[str] = mapped_column(Text)


_COLUMNS = (
    ResponseRow.id,
    ResponseRow.owner,
    ResponseRow.created_at,
    ResponseRow.previous_id,
    ResponseRow.body,
    ResponseRow.input_items,
)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    owner: str
    created_at: datetime
    previous_id: str | None
    body: str
    input_items: str


@dataclass(frozen=True, slots=True)
class StoredConversation:
    id: str
    owner: str
    created_at: datetime
    metadata: str


class Responses:
    """Stored responses, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(self, record: StoredResponse) -> None:
        await self.put_many([record])

    async def put_many(self, records: Sequence[StoredResponse]) -> None:
        # Core, not the ORM's unit of work: one executemany, nothing tracked.
        if records:
            await self._session.execute(insert(ResponseRow), [_fields(r) for r in records])

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        query = select(*_COLUMNS).where(ResponseRow.id == response_id, ResponseRow.owner == owner)
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        rid, found_owner, created, previous, body, items = row
        return StoredResponse(rid, found_owner, _utc(created), previous, body, items)

    async def delete(self, response_id: str, owner: str) -> bool:
        query = delete(ResponseRow).where(ResponseRow.id == response_id, ResponseRow.owner == owner)
        return bool((await self._session.execute(query)).rowcount)  # type: ignore[attr-defined]


class Conversations:
    """Conversations and their ordered items, within the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def put(self, record: StoredConversation) -> None:
        row = ConversationRow(
            id=record.id, owner=record.owner, created_at=record.created_at, meta=record.metadata
        )
        self._session.add(row)
        await self._session.flush()

    async def get(self, conversation_id: str, owner: str) -> StoredConversation | None:
        row = await self._session.get(ConversationRow, conversation_id)
        if row is None or row.owner != owner:
            return None
        return StoredConversation(row.id, row.owner, _utc(row.created_at), row.meta)

    async def set_metadata(self, conversation_id: str, metadata: str) -> None:
        row = await self._session.get(ConversationRow, conversation_id)
        if row is not None:
            row.meta = metadata
            await self._session.flush()

    async def delete(self, conversation_id: str) -> None:
        items = ConversationItemRow.conversation_id == conversation_id
        await self._session.execute(delete(ConversationItemRow).where(items))
        await self._session.execute(
            delete(ConversationRow).where(ConversationRow.id == conversation_id)
        )

    async def append(self, conversation_id: str, items: Sequence[tuple[str, str]]) -> None:
        """``items``: (item id, item JSON), in order."""
        self._session.add_all(
            ConversationItemRow(conversation_id=conversation_id, item_id=i, item=text)
            for i, text in items
        )
        await self._session.flush()

    async def items(self, conversation_id: str) -> list[tuple[str, str]]:
        """Every (item id, item JSON) of the conversation, oldest first."""
        query = (
            select(ConversationItemRow.item_id, ConversationItemRow.item)
            .where(ConversationItemRow.conversation_id == conversation_id)
            .order_by(ConversationItemRow.seq)
        )
        return [(i, text) for i, text in (await self._session.execute(query)).all()]

    async def delete_item(self, conversation_id: str, item_id: str) -> bool:
        query = delete(ConversationItemRow).where(
            ConversationItemRow.conversation_id == conversation_id,
            ConversationItemRow.item_id == item_id,
        )
        return bool((await self._session.execute(query)).rowcount)  # type: ignore[attr-defined]


def _fields(record: StoredResponse) -> dict[str, object]:
    return {
        "id": record.id,
        "owner": record.owner,
        "created_at": record.created_at,
        "previous_id": record.previous_id,
        "body": record.body,
        "input_items": record.input_items,
    }


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
