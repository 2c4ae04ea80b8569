"""The ``responses`` aggregate and the ``conversations`` aggregate with its items.

Bodies and items are JSON text the store never reads: what they mean is the services'
business. Every read and delete is by id *and* owner, so a row of another owner is simply not
found (the API answers 404 without telling whether it exists).

``response_items`` indexes a stored response's items (inputs and outputs) by owner and item
id, so that an ``item_reference`` finds the response holding the item in one query; the item
itself stays in the response's JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, Text, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from modelyard.store.base import Base

# The longest item id indexed: an item with a longer id (a client's) is stored but cannot be
# referenced.
ITEM_ID_CHARS = 64


class ResponseRow(Base):
    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    previous_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    input_items: Mapped[str] = mapped_column(Text)


class ResponseItemRow(Base):
    __tablename__ = "response_items"

    # The key serves the lookup (owner, then item ids); an id resent in several responses has
    # a row for each.
    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_CHARS), primary_key=True)
    response_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


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
    item_id: Mapped[str] = mapped_column(String(64), index=True)
    item: Mapped[str] = mapped_column(Text)


_COLUMNS = (
    ResponseRow.id,
    ResponseRow.owner,
    ResponseRow.created_at,
    ResponseRow.previous_id,
    ResponseRow.body,
    ResponseRow.input_items,
)


_INDEX_COLUMNS = ("owner", "item_id", "response_id")
_SQLITE_INDEX = f"INSERT INTO response_items ({', '.join(_INDEX_COLUMNS)}) VALUES (?, ?, ?)"  # noqa: S608


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    owner: str
    created_at: datetime
    previous_id: str | None
    body: str
    input_items: str
    # The ids of its items (inputs, then outputs), indexed when it is written; not read back.
    item_ids: tuple[str, ...] = ()


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
            await self._index(records)

    async def _index(self, records: Sequence[StoredResponse]) -> None:
        """The records' items into ``response_items``: on SQLite one executemany of plain
        values (about 8 bytecodes a row, against some 400 through the ORM: a stored response
        has a row per item), elsewhere one executemany through Core."""
        index = [
            (r.owner, item_id, r.id)
            for r in records
            for item_id in dict.fromkeys(r.item_ids)  # once each, in order
            if len(item_id) <= ITEM_ID_CHARS
        ]
        if not index:
            return
        conn = await self._session.connection()
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql(_SQLITE_INDEX, index)
        else:
            rows = [dict(zip(_INDEX_COLUMNS, row, strict=True)) for row in index]
            await conn.execute(insert(ResponseItemRow), rows)

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        query = select(*_COLUMNS).where(ResponseRow.id == response_id, ResponseRow.owner == owner)
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        rid, found_owner, created, previous, body, items = row
        return StoredResponse(rid, found_owner, _utc(created), previous, body, items)

    async def delete(self, response_id: str, owner: str) -> bool:
        query = delete(ResponseRow).where(ResponseRow.id == response_id, ResponseRow.owner == owner)
        deleted = bool((await self._session.execute(query)).rowcount)  # type: ignore[attr-defined]
        if deleted:
            items = ResponseItemRow.response_id == response_id
            await self._session.execute(delete(ResponseItemRow).where(items))
        return deleted

    async def holding(self, item_ids: Sequence[str], owner: str) -> list[StoredResponse]:
        """The owner's stored responses that hold these items, one per item id (the latest
        one, when an item was resent in several: response ids grow with time)."""
        latest = (
            select(func.max(ResponseItemRow.response_id).label("rid"))
            .where(ResponseItemRow.owner == owner, ResponseItemRow.item_id.in_(item_ids))
            .group_by(ResponseItemRow.item_id)
            .subquery()
        )
        query = select(*_COLUMNS).where(
            ResponseRow.id.in_(select(latest.c.rid)), ResponseRow.owner == owner
        )
        return [
            StoredResponse(rid, found_owner, _utc(created), previous, body, items)
            for rid, found_owner, created, previous, body, items in (
                await self._session.execute(query)
            ).all()
        ]


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

    async def owned_items(self, item_ids: Sequence[str], owner: str) -> list[tuple[str, str]]:
        """(item id, item JSON) of these ids in the owner's conversations, oldest first."""
        query = (
            select(ConversationItemRow.item_id, ConversationItemRow.item)
            .join(ConversationRow, ConversationRow.id == ConversationItemRow.conversation_id)
            .where(ConversationRow.owner == owner, ConversationItemRow.item_id.in_(item_ids))
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
