"""``item_reference`` input items: decoded as a placeholder with its position, bounded in
number, refused with a 400 naming the field when malformed."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.core.errors import InvalidRequest
from modelyard.protocols.openai.responses.decode import decode_response_request
from modelyard.protocols.openai.responses.items import (
    ITEM_ID_CHARS,
    MAX_REFERENCES,
    canonical_items,
    reference_positions,
    to_messages,
)
from modelyard.protocols.openai.responses.request import ToolNames

_USER = {"role": "user", "content": "hi"}


def _decode(items: list[Any]) -> Any:
    return decode_response_request({"model": "m", "input": items})


def test_a_reference_is_kept_in_place_with_its_position():
    req = _decode([_USER, {"type": "item_reference", "id": "msg_1"}, {"id": "fc_2"}, _USER])
    assert req.references == (1, 2)
    assert req.items[1] == {"type": "item_reference", "id": "msg_1"}
    assert req.items[2] == {
        "type": "item_reference",
        "id": "fc_2",
    }  # the spec's type may be left out
    # Until resolved, a reference sends nothing: the two user messages only.
    assert [m.text() for m in req.chat.messages] == ["hi", "hi"]
    assert to_messages(req.items, ToolNames()) == req.chat.messages


def test_references_alone_are_an_input():
    req = _decode([{"type": "item_reference", "id": "msg_1"}])
    assert req.references == (0,) and req.chat.messages == []


def test_a_request_without_references_has_none():
    assert _decode([_USER]).references == ()
    assert decode_response_request({"model": "m", "input": "hi"}).references == ()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"type": "item_reference"}, "input[0].id: is required"),
        ({"type": "item_reference", "id": 5}, "input[0].id"),
        ({"type": "item_reference", "id": ""}, "input[0].id: must be the id of a stored item"),
        ({"type": "item_reference", "id": "x", "role": "user"}, "input[0].role: unknown field"),
        ({"id": "x", "content": "hi"}, "input[0].content: unknown field"),
    ],
)
def test_a_malformed_reference_is_a_400_naming_its_field(item: dict[str, Any], message: str):
    with pytest.raises(InvalidRequest) as caught:
        _decode([item])
    assert str(caught.value.message).startswith(message) or message in caught.value.message


def test_the_number_of_references_is_capped():
    refs = [{"type": "item_reference", "id": f"msg_{n}"} for n in range(MAX_REFERENCES)]
    assert len(_decode(refs).references) == MAX_REFERENCES
    with pytest.raises(InvalidRequest) as caught:
        _decode([*refs, {"id": "one_more"}])
    assert caught.value.param == "input"
    assert f"at most {MAX_REFERENCES} item_reference items" in caught.value.message
    with pytest.raises(InvalidRequest) as caught:
        reference_positions([{"type": "item_reference", "id": "x"}] * 101, "items")
    assert caught.value.param == "items"


@pytest.mark.parametrize("kind", ["message", "item_reference", "function_call_output"])
def test_an_item_id_longer_than_the_store_keeps_is_a_400(kind: str):
    """The store keeps an item id in 64 characters (conversation items, the reference index):
    a longer one was a 500 on PostgreSQL when a conversation stored it."""
    item: dict[str, Any] = {"type": kind, "id": "i" * ITEM_ID_CHARS}
    if kind == "message":
        item.update(role="user", content="hi")
    elif kind == "function_call_output":
        item.update(call_id="c", output="ok")
    assert canonical_items([item], "items")[0]["id"] == "i" * ITEM_ID_CHARS
    with pytest.raises(InvalidRequest) as caught:
        canonical_items([{**item, "id": "i" * (ITEM_ID_CHARS + 1)}], "items")
    assert caught.value.param == "items[0].id"
    assert "at most 64 characters; got 65" in caught.value.message


def test_the_limit_is_the_store_s_width():
    from sqlalchemy import String

    from modelyard.store.responses import ConversationItemRow, ResponseItemRow

    for row in (ConversationItemRow, ResponseItemRow):
        column_type = row.__table__.c.item_id.type
        assert isinstance(column_type, String) and column_type.length == ITEM_ID_CHARS
