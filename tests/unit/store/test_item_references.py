"""``item_reference`` resolution through ``ResponseState`` on SQLite and PostgreSQL: the
caller's stored items (responses' inputs and outputs, conversations) put in place, another
owner's a 404 naming the reference, unwritten responses found, and revision 0021's index."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.core.errors import NotFound
from modelyard.core.ids import id_time, timed_id
from modelyard.protocols.openai.responses.request import fresh_item_id
from modelyard.services.response_state import ResponseState, ResponseWrites, Timing
from modelyard.store import Store
from modelyard.store.migrate import alembic_config
from tests.unit.store.test_response_state import NOW, _body, _msg, _Sleeps


def _ref(item_id: str) -> dict[str, Any]:
    return {"type": "item_reference", "id": item_id}


def _call(item_id: str) -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": "c1", "name": "f",
            "arguments": "{}", "status": "completed"}  # fmt: skip


async def test_references_become_the_owners_stored_items_in_place(store: Store):
    state = ResponseState(store)
    output = [{"type": "reasoning", "id": "rs_1", "summary": []}, _call("fc_1")]
    await state.save("p1", _body(timed_id("resp"), None, output), [_msg("in_1", "question")])
    conv = {"id": "conv_1", "created_at": 1_700_000_000, "metadata": {}}
    await state.create_conversation("p1", conv, [_msg("cm_1", "from the conversation")])
    items = [
        _msg("new", "now"),
        _ref("fc_1"),
        _ref("in_1"),
        _ref("rs_1"),
        _ref("cm_1"),
        _ref("fc_1"),
    ]
    await state.resolve("p1", items, (1, 2, 3, 4, 5))
    assert items == [_msg("new", "now"), _call("fc_1"), _msg("in_1", "question"), output[0],
                     _msg("cm_1", "from the conversation"), _call("fc_1")]  # fmt: skip
    for owner, refs, at in (("p2", [_ref("fc_1")], 0), ("p1", [_msg("a", "b"), _ref("nope")], 1)):
        with pytest.raises(NotFound) as caught:
            await state.resolve(owner, refs, (at,))
        assert caught.value.param == f"input[{at}].id"
        assert caught.value.message.startswith(f"Item with id {refs[at]['id']!r} not found")
    with pytest.raises(NotFound) as caught:
        await state.resolve("p2", [_ref("cm_1")], (0,), "items")  # another owner's conversation
    assert caught.value.param == "items[0].id"


async def test_an_item_resent_in_later_responses_and_a_deleted_response(store: Store):
    state = ResponseState(store)
    first, second = timed_id("resp", NOW), timed_id("resp", NOW + 1)
    await state.save("p1", _body(first, None, [_msg("o1", "old", "assistant")]), [_msg("i1", "q")])
    # The client resends o1 (same id, its text changed): the latest response's copy is found.
    await state.save(
        "p1", _body(second, None, []), [_msg("i1", "q"), _msg("o1", "new", "assistant")]
    )
    items = [_ref("o1")]
    await state.resolve("p1", items, (0,))
    assert items == [_msg("o1", "new", "assistant")]
    await state.delete("p1", second)
    items = [_ref("o1")]
    await state.resolve("p1", items, (0,))
    assert items == [_msg("o1", "old", "assistant")]
    await state.delete("p1", first)
    with pytest.raises(NotFound):
        await state.resolve("p1", [_ref("i1")], (0,))


async def test_unwritten_items_are_found_here_and_waited_for_once_elsewhere(store: Store):
    writes = ResponseWrites(store, interval_s=0.01)  # not started: flushed in the sleep below
    here = ResponseState(store, writes)
    sleeps = _Sleeps(writes.sink.flush)
    elsewhere = ResponseState(
        store, ResponseWrites(store, interval_s=0.01, timing=Timing(lambda: NOW, sleeps))
    )
    fresh = f"msg_{int((NOW - 5) * 1000):012x}{'ab' * 16}"  # fresh_item_id's shape, 5 s old
    await here.save("p1", _body(timed_id("resp", NOW), None, [_msg(fresh, "a", "assistant")]), [])
    items = [_ref(fresh)]
    await here.resolve("p1", items, (0,))  # this process's batch, not written yet
    assert items[0]["id"] == fresh and sleeps.slept == []
    with pytest.raises(NotFound):
        await here.resolve("p2", [_ref(fresh)], (0,))  # unwritten rows keep their owner too
    items = [_ref(fresh)]
    await elsewhere.resolve("p1", items, (0,))  # another process's: found after one wait
    assert items[0]["id"] == fresh and sleeps.slept == [0.02]
    old = f"msg_{int((NOW - 3600) * 1000):012x}{'ab' * 16}"
    for never in ("msg_nope", old, "msg_" + "ab" * 16):
        with pytest.raises(NotFound):
            await elsewhere.resolve("p1", [_ref(never)], (0,))
    assert sleeps.slept == [0.02]  # none of those waited
    assert id_time(fresh_item_id("fc"), "fc") is not None  # the gateway's item ids say when


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _migrate(conn: Connection) -> None:
    command.upgrade(alembic_config(conn), "0020")
    body = orjson.dumps(_body("resp_a", None, [_msg("o1", "x"), {"type": "x"}])).decode()
    items = orjson.dumps([_msg("i1", "q"), _msg("i1", "q"), _msg("l" * 65, "long")]).decode()
    conn.execute(
        text("INSERT INTO responses VALUES ('resp_a', 'p1', '2026-01-01', NULL, :b, :i)"),
        {"b": body, "i": items},
    )
    command.upgrade(alembic_config(conn), "0021")
    rows = conn.execute(text("SELECT owner, item_id, response_id FROM response_items")).all()
    assert sorted(tuple(r) for r in rows) == [("p1", "i1", "resp_a"), ("p1", "o1", "resp_a")]
    command.downgrade(alembic_config(conn), "0020")
    assert "response_items" not in _tables(conn)


async def test_revision_0021_indexes_the_stored_responses_and_drops_the_index(store_url: str):
    engine = create_async_engine(store_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate)
    finally:
        await engine.dispose()
