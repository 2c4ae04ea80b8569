"""Stored responses and conversations: what ``previous_response_id`` and ``conversation``
resend, and what the retrieve, delete and list routes read.

Owners: a row belongs to the project of the key that created it ('' for keys of no project and
for keyless mode); every read is by id and owner, so another project's key gets the same 404
as for an id that never existed. Items are the wire API's JSON objects, kept as they are.

An ``item_reference`` input item is replaced by the stored item of that id (``resolve``): of
the caller's own responses (inputs and outputs) or conversations, all of a request's
references in one transaction; an unknown id, or another owner's, is the same 404.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import orjson

from modelyard.core.errors import InvalidRequest, NotFound, clipped
from modelyard.core.ids import id_time
from modelyard.store import Store
from modelyard.store.responses import (
    Conversations,
    Responses,
    StoredConversation,
    StoredResponse,
)
from modelyard.store.sink import BatchSink
from modelyard.store.ticks import Tick
from modelyard.tenancy.keys import Principal

JSON = dict[str, Any]
_ID = itemgetter("id")
# A chain of previous responses is walked one row at a time; this bounds the walk.
MAX_CHAIN = 10_000
# A response id is made when the response begins and written when it ends: how long after its
# id a response may still be unwritten is the longest a response runs. The default upstream
# ``total`` timeout is 600 s and retries add their ``budget_s`` (60 s); 15 minutes covers both
# with a margin. A miss on an older id answers 404 at once.
IN_FLIGHT_S = 15 * 60.0
# How far ahead of this clock another replica's clock may be and its ids still count as fresh.
SKEW_S = 60.0


@dataclass(frozen=True, slots=True)
class Timing:
    """The clock and the sleep of a stored-response lookup (injected by tests)."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    in_flight_s: float = IN_FLIGHT_S


def owner_of(principal: Principal) -> str:
    return principal.project_id or ""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: ``data`` in the asked order, and whether more follow."""

    data: list[JSON]
    has_more: bool

    def body(self) -> JSON:
        ids = [item["id"] for item in self.data]
        return {
            "object": "list",
            "data": self.data,
            "has_more": self.has_more,
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }


def page_of(items: Sequence[JSON], after: str | None, limit: int, order: str) -> Page:
    """``limit`` items after the one with id ``after`` (404 when it is not there)."""
    ordered = list(items) if order == "asc" else list(reversed(items))
    start = 0
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise NotFound(f"no item {after!r} in this list", param="after")
        start = ids.index(after) + 1
    chunk = ordered[start : start + limit]
    return Page(chunk, start + limit < len(ordered))


class ResponseWrites:
    """Stored responses written off the request path, in batches (``BatchSink``): one
    transaction per batch instead of one per response (about 15 times less CPU per row on
    SQLite). Until its batch is written, a response is served from ``pending`` by this
    process; another process (``serve --workers N``) finds it after the flush, which is why a
    miss on an id that may be in another process's batch is looked up once more after
    ``settle_s`` (``may_be_unwritten``). A hard crash can lose the responses of the last flush
    interval, as for the ledger; a graceful stop writes them."""

    def __init__(
        self,
        store: Store,
        interval_s: float = 0.2,
        tick: Tick | None = None,
        timing: Timing | None = None,
    ) -> None:
        self._store = store
        self.pending: dict[str, StoredResponse] = {}
        self.settle_s = 2 * interval_s
        self.timing = timing or Timing()
        self.sink: BatchSink[StoredResponse] = BatchSink(
            "stored responses", self._write, max_queue=10_000, interval_s=interval_s, tick=tick
        )

    def may_be_unwritten(self, response_id: str, prefix: str = "resp") -> bool:
        """Whether a response of this id (or an item of this id and prefix) could still sit in
        another process's batch: its id is one of ours (``core.ids``) made at most
        ``in_flight_s`` + ``settle_s`` ago. An id of another shape, older, or from the future
        (beyond a clock skew) cannot be."""
        made = id_time(response_id, prefix)
        if made is None:
            return False
        age = self.timing.clock() - made
        return -SKEW_S <= age <= self.timing.in_flight_s + self.settle_s

    def start(self) -> None:
        self.sink.start()

    async def aclose(self) -> None:
        await self.sink.aclose()

    async def save(self, record: StoredResponse) -> None:
        self.pending[record.id] = record
        if not self.sink.put(record):  # the queue is full (the database is slow): write now
            async with self._store.transaction() as session:
                await Responses(session).put(record)
            self.pending.pop(record.id, None)

    def find(self, response_id: str, owner: str) -> StoredResponse | None:
        found = self.pending.get(response_id)
        return found if found is not None and found.owner == owner else None

    def holding(self, item_ids: set[str], owner: str) -> list[StoredResponse]:
        """The owner's unwritten responses that hold any of these items."""
        return [
            r
            for r in self.pending.values()
            if r.owner == owner and not item_ids.isdisjoint(r.item_ids)
        ]

    async def _write(self, batch: list[StoredResponse]) -> None:
        async with self._store.transaction() as session:
            await Responses(session).put_many(batch)
        for record in batch:
            self.pending.pop(record.id, None)


class ResponseState:
    """The state routes' use cases over the store (None: a server without a store) and, on a
    server, its batch writer of responses."""

    def __init__(self, store: Store | None, writes: ResponseWrites | None = None) -> None:
        self._store = store
        self._writes = writes

    def _need(self) -> Store:
        if self._store is None:
            raise InvalidRequest("this server keeps no store: responses are not stored")
        return self._store

    async def history(self, owner: str, previous_id: str) -> list[JSON]:
        """Every item of the chain ending at ``previous_id`` (inputs and outputs, oldest
        first); 404 before anything is sent when that response is not there."""
        chain: list[StoredResponse] = []
        found: StoredResponse | None = await self._find(owner, previous_id, "previous_response_id")
        async with self._need().transaction() as session:
            rows = Responses(session)
            while found is not None and len(chain) < MAX_CHAIN:
                chain.append(found)
                before = found.previous_id
                found = (
                    (self._pending(before, owner) or await rows.get(before, owner))
                    if before
                    else None
                )
        items: list[JSON] = []
        for stored in reversed(chain):
            items.extend(orjson.loads(stored.input_items))
            items.extend(orjson.loads(stored.body)["output"])
        return items

    async def save(self, owner: str, body: JSON, items: list[JSON]) -> None:
        if self._store is None:
            return
        record = StoredResponse(
            body["id"],
            owner,
            datetime.fromtimestamp(body["created_at"], UTC),
            body.get("previous_response_id"),
            orjson.dumps(body).decode(),
            orjson.dumps(items).decode(),
            tuple(map(_ID, chain(items, body["output"]))),
        )
        if self._writes is not None:
            await self._writes.save(record)
            return
        async with self._store.transaction() as session:
            await Responses(session).put(record)

    async def get(self, owner: str, response_id: str) -> JSON:
        return orjson.loads((await self._stored(owner, response_id)).body)  # type: ignore[no-any-return]

    async def written(self, owner: str, response_id: str) -> JSON | None:
        """As ``get``, but a miss is None at once (no second look after another process's
        flush): for a caller with somewhere else to look first."""
        found = self._pending(response_id, owner) or await self._read(owner, response_id)
        return None if found is None else orjson.loads(found.body)

    async def input_items(self, owner: str, response_id: str) -> list[JSON]:
        return orjson.loads((await self._stored(owner, response_id)).input_items)  # type: ignore[no-any-return]

    async def delete(self, owner: str, response_id: str) -> None:
        await self._find(owner, response_id, "response_id")  # 404 for another owner's
        if self._writes is not None:
            await self._writes.sink.flush()  # a queued row must not be written after this
        async with self._need().transaction() as session:
            if not await Responses(session).delete(response_id, owner):
                raise _no_response(response_id, "response_id")

    async def _stored(self, owner: str, response_id: str) -> StoredResponse:
        return await self._find(owner, response_id, "response_id")

    def _pending(self, response_id: str, owner: str) -> StoredResponse | None:
        return self._writes.find(response_id, owner) if self._writes is not None else None

    async def _find(self, owner: str, response_id: str, param: str) -> StoredResponse:
        """This process's unwritten responses, then the store; a miss on an id another process
        may not have written yet is looked up once more, after its batch has had time to be
        written (any other miss answers at once)."""
        found = self._pending(response_id, owner) or await self._read(owner, response_id)
        writes = self._writes
        if found is None and writes is not None and writes.may_be_unwritten(response_id):
            await writes.timing.sleep(writes.settle_s)
            found = await self._read(owner, response_id)
        if found is None:
            raise _no_response(response_id, param)
        return found

    async def _read(self, owner: str, response_id: str) -> StoredResponse | None:
        async with self._need().transaction() as session:
            return await Responses(session).get(response_id, owner)

    # Item references

    async def resolve(
        self, owner: str, items: list[JSON], at: Sequence[int], param: str = "input"
    ) -> None:
        """Put in place of each reference in ``items`` (at the positions ``at``) the stored item
        it names: this process's unwritten responses first, then the store in one transaction;
        a miss another process may not have written yet is looked for once more after its
        batch has had time to be written (as ``_find``). 404 naming ``{param}[i].id``."""
        wanted = {items[i]["id"] for i in at}
        found: dict[str, JSON] = {}
        writes = self._writes
        if writes is not None:
            _collect(found, wanted, writes.holding(wanted, owner))
        missing = wanted - found.keys()
        if missing:
            found.update(await self._stored_items(owner, missing))
        missing = wanted - found.keys()
        if missing and writes is not None and any(_fresh(writes, i) for i in missing):
            await writes.timing.sleep(writes.settle_s)
            found.update(await self._stored_items(owner, missing))
        for i in at:
            item_id = items[i]["id"]
            if item_id not in found:
                raise NotFound(
                    f"Item with id {clipped(item_id)!r} not found: no stored response or "
                    "conversation of this project has it",
                    param=f"{param}[{i}].id",
                )
            items[i] = found[item_id]

    async def _stored_items(self, owner: str, ids: set[str]) -> dict[str, JSON]:
        """The stored items of these ids: responses' first, then conversations'."""
        found: dict[str, JSON] = {}
        async with self._need().transaction() as session:
            _collect(found, ids, await Responses(session).holding(sorted(ids), owner))
            rest = sorted(ids - found.keys())
            if rest:
                for item_id, text in await Conversations(session).owned_items(rest, owner):
                    found[item_id] = orjson.loads(text)
        return found

    # Conversations

    async def create_conversation(self, owner: str, conv: JSON, items: list[JSON]) -> None:
        record = StoredConversation(
            conv["id"],
            owner,
            datetime.fromtimestamp(conv["created_at"], UTC),
            orjson.dumps(conv["metadata"]).decode(),
        )
        async with self._need().transaction() as session:
            store = Conversations(session)
            await store.put(record)
            await store.append(record.id, _rows(items))

    async def conversation(self, owner: str, conversation_id: str) -> JSON:
        async with self._need().transaction() as session:
            found = await _conversation(Conversations(session), owner, conversation_id)
        return _conversation_json(found)

    async def update_conversation(self, owner: str, conversation_id: str, metadata: JSON) -> JSON:
        async with self._need().transaction() as session:
            store = Conversations(session)
            found = await _conversation(store, owner, conversation_id)
            await store.set_metadata(found.id, orjson.dumps(metadata).decode())
        return {**_conversation_json(found), "metadata": metadata}

    async def delete_conversation(self, owner: str, conversation_id: str) -> None:
        async with self._need().transaction() as session:
            store = Conversations(session)
            await store.delete((await _conversation(store, owner, conversation_id)).id)

    async def conversation_items(self, owner: str, conversation_id: str) -> list[JSON]:
        async with self._need().transaction() as session:
            store = Conversations(session)
            found = await _conversation(store, owner, conversation_id)
            rows = await store.items(found.id)
        return [orjson.loads(text) for _id, text in rows]

    async def append_items(self, owner: str, conversation_id: str, items: list[JSON]) -> None:
        async with self._need().transaction() as session:
            store = Conversations(session)
            found = await _conversation(store, owner, conversation_id)
            await store.append(found.id, _rows(items))

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> JSON:
        async with self._need().transaction() as session:
            store = Conversations(session)
            found = await _conversation(store, owner, conversation_id)
            if not await store.delete_item(found.id, item_id):
                raise NotFound(f"no item {item_id!r} in conversation {found.id!r}")
        return _conversation_json(found)


async def _conversation(
    store: Conversations, owner: str, conversation_id: str
) -> StoredConversation:
    found = await store.get(conversation_id, owner)
    if found is None:
        raise NotFound(f"no conversation with id {conversation_id!r}", param="conversation_id")
    return found


def _conversation_json(found: StoredConversation) -> JSON:
    return {
        "id": found.id,
        "object": "conversation",
        "created_at": int(found.created_at.timestamp()),
        "metadata": orjson.loads(found.metadata),
    }


def _collect(found: dict[str, JSON], ids: set[str], holding: Iterable[StoredResponse]) -> None:
    """The items of ``ids`` that these responses hold, into ``found`` (a later one wins)."""
    for stored in holding:
        for item in (*orjson.loads(stored.input_items), *orjson.loads(stored.body)["output"]):
            if item.get("id") in ids:
                found[item["id"]] = item


def _fresh(writes: ResponseWrites, item_id: str) -> bool:
    """Whether another process may not have written the response holding this item yet."""
    return writes.may_be_unwritten(item_id, item_id.partition("_")[0])


def _rows(items: list[JSON]) -> list[tuple[str, str]]:
    return [(item["id"], orjson.dumps(item).decode()) for item in items]


def _no_response(response_id: str, param: str) -> NotFound:
    return NotFound(f"no response with id {response_id!r}", param=param)
