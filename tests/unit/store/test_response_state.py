"""Stored responses and conversations on SQLite and PostgreSQL, through ``ResponseState``:
chains resent in order, owners kept apart, paging, and revision 0007's downgrade."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.core.errors import NotFound
from modelyard.core.ids import timed_id
from modelyard.services.response_state import (
    IN_FLIGHT_S,
    ResponseState,
    ResponseWrites,
    Timing,
    page_of,
)
from modelyard.store import Store
from modelyard.store.migrate import alembic_config


def _msg(item_id: str, text: str, role: str = "user") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "role": role, "status": "completed",
            "content": [{"type": "input_text", "text": text}]}  # fmt: skip


def _body(rid: str, previous: str | None, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": rid, "created_at": 1_700_000_000, "previous_response_id": previous,
            "output": output, "status": "completed"}  # fmt: skip


async def test_a_chain_is_resent_oldest_first_and_owners_are_apart(store: Store):
    state = ResponseState(store)
    await state.save("p1", _body("r1", None, [_msg("o1", "a1", "assistant")]), [_msg("i1", "q1")])
    await state.save("p1", _body("r2", "r1", [_msg("o2", "a2", "assistant")]), [_msg("i2", "q2")])
    history = await state.history("p1", "r2")
    assert [item["id"] for item in history] == ["i1", "o1", "i2", "o2"]
    with pytest.raises(NotFound) as caught:
        await state.history("p2", "r2")
    assert caught.value.param == "previous_response_id"
    with pytest.raises(NotFound):
        await state.get("p2", "r1")
    with pytest.raises(NotFound):
        await state.delete("p2", "r1")
    assert (await state.get("p1", "r1"))["id"] == "r1"
    await state.delete("p1", "r1")
    with pytest.raises(NotFound):
        await state.get("p1", "r1")
    # A deleted ancestor ends the chain; the rest still resends.
    assert [item["id"] for item in await state.history("p1", "r2")] == ["i2", "o2"]


async def test_conversations_keep_items_in_order_per_owner(store: Store):
    state = ResponseState(store)
    conv = {"id": "conv_1", "created_at": 1_700_000_000, "metadata": {"k": "v"}}
    await state.create_conversation("p1", conv, [_msg("m1", "one")])
    await state.append_items("p1", "conv_1", [_msg("m2", "two"), _msg("m3", "three")])
    items = await state.conversation_items("p1", "conv_1")
    assert [i["id"] for i in items] == ["m1", "m2", "m3"]
    with pytest.raises(NotFound):
        await state.conversation_items("p2", "conv_1")
    with pytest.raises(NotFound):
        await state.append_items("p2", "conv_1", [_msg("x", "x")])
    updated = await state.update_conversation("p1", "conv_1", {"k": "w"})
    assert (
        (await state.conversation("p1", "conv_1"))["metadata"] == updated["metadata"] == {"k": "w"}
    )
    await state.delete_item("p1", "conv_1", "m2")
    assert [i["id"] for i in await state.conversation_items("p1", "conv_1")] == ["m1", "m3"]
    await state.delete_conversation("p1", "conv_1")
    with pytest.raises(NotFound):
        await state.conversation("p1", "conv_1")


def test_pages():
    items = [{"id": f"i{n}"} for n in range(5)]
    first = page_of(items, None, 2, "asc")
    assert [i["id"] for i in first.data] == ["i0", "i1"] and first.has_more
    rest = page_of(items, "i1", 10, "asc")
    assert [i["id"] for i in rest.data] == ["i2", "i3", "i4"] and not rest.has_more
    assert page_of(items, None, 1, "desc").body()["first_id"] == "i4"
    assert page_of([], None, 20, "desc").body() == {
        "object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None,
    }  # fmt: skip
    with pytest.raises(NotFound):
        page_of(items, "nope", 2, "asc")


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _migrate(conn: Connection) -> None:
    command.upgrade(alembic_config(conn), "0006")
    assert "responses" not in _tables(conn)
    command.upgrade(alembic_config(conn), "head")
    assert {"responses", "conversations", "conversation_items"} <= _tables(conn)
    command.downgrade(alembic_config(conn), "0006")
    assert not {"responses", "conversations", "conversation_items"} & _tables(conn)


async def test_revision_0007_creates_and_drops_the_state_tables(store_url: str):
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate)
    finally:
        await engine.dispose()


async def test_batched_writes_are_read_before_and_after_their_flush(store: Store):
    writes = ResponseWrites(store, interval_s=0.01)  # not started: flushed by hand below
    here, elsewhere = ResponseState(store, writes), ResponseState(store)
    await here.save("p1", _body("r1", None, [_msg("o1", "a1", "assistant")]), [_msg("i1", "q1")])
    await here.save("p1", _body("r2", "r1", [_msg("o2", "a2", "assistant")]), [_msg("i2", "q2")])
    assert [i["id"] for i in await here.history("p1", "r2")] == ["i1", "o1", "i2", "o2"]
    with pytest.raises(NotFound):
        await here.get("p2", "r1")  # pending rows keep their owner too
    with pytest.raises(NotFound):
        await elsewhere.get("p1", "r1")  # another process: not written yet
    await writes.sink.flush()
    assert writes.pending == {}
    assert (await elsewhere.get("p1", "r2"))["id"] == "r2"
    await here.save("p1", _body("r3", None, []), [])
    await here.delete("p1", "r3")  # queued, then deleted: the flush must not bring it back
    await writes.aclose()
    with pytest.raises(NotFound):
        await elsewhere.get("p1", "r3")


NOW = 1_800_000_000.0  # the other process's clock, injected


class _Sleeps:
    """The other process's sleep: records each wait and runs ``during`` in it (as a flush of
    this process's batch would happen meanwhile)."""

    def __init__(self, during: Callable[[], Awaitable[None]]) -> None:
        self.slept: list[float] = []
        self._during = during

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        await self._during()


async def test_a_miss_waits_only_for_an_id_another_process_may_not_have_written(store: Store):
    writes = ResponseWrites(store, interval_s=0.01)  # not started: flushed in the sleep below
    sleeps = _Sleeps(writes.sink.flush)
    timing = Timing(clock=lambda: NOW, sleep=sleeps)
    here = ResponseState(store, writes)
    elsewhere = ResponseState(store, ResponseWrites(store, interval_s=0.01, timing=timing))
    late = timed_id("resp", NOW - 5)
    await here.save("p1", _body(late, None, []), [])
    # Another process's response, written after the first look: found after one wait.
    assert (await elsewhere.get("p1", late))["id"] == late
    assert sleeps.slept == [0.02]
    never = [
        "resp_nope",
        "resp_" + "ab" * 16,  # an older gateway's id: no time in it
        "resp_" + "67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",  # OpenAI's
        timed_id("resp", NOW - IN_FLIGHT_S - 60),  # older than any response runs
        timed_id("resp", NOW + 3600),  # from the future: not made by a replica
        timed_id("resp", NOW).upper(),
        timed_id("conv", NOW),
    ]
    for missing in never:
        with pytest.raises(NotFound):
            await elsewhere.get("p1", missing)
        with pytest.raises(NotFound):
            await elsewhere.history("p1", missing)
    assert sleeps.slept == [0.02]  # none of those waited
    fresh = timed_id("resp", NOW - 1)
    with pytest.raises(NotFound):
        await elsewhere.input_items("p1", fresh)  # a fresh id: still looked up once more
    assert sleeps.slept == [0.02, 0.02]
    await writes.aclose()
