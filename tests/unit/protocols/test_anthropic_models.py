"""The Models API in the Messages dialect: one page of models, cut by limit, after_id or
before_id, with has_more, first_id and last_id as Anthropic's API sets them."""

from __future__ import annotations

import orjson
import pytest

from modelyard.core.errors import InvalidRequest
from modelyard.protocols.anthropic.models import ModelsPage, list_json, model_json, page_of

MODELS = [model_json(name, 0) for name in ("a", "b", "c", "d", "e")]


def ids(page: ModelsPage) -> tuple[list[str], bool, str | None, str | None]:
    out = orjson.loads(list_json(MODELS, page))
    return [m["id"] for m in out["data"]], out["has_more"], out["first_id"], out["last_id"]


def test_pages_forward_and_backward():
    assert ids(ModelsPage(2)) == (["a", "b"], True, "a", "b")
    assert ids(ModelsPage(2, after_id="b")) == (["c", "d"], True, "c", "d")
    assert ids(ModelsPage(2, after_id="d")) == (["e"], False, "e", "e")
    assert ids(ModelsPage(2, before_id="e")) == (["c", "d"], True, "c", "d")
    assert ids(ModelsPage(2, before_id="b")) == (["a"], False, "a", "a")
    assert ids(ModelsPage(20, after_id="e")) == ([], False, None, None)


def test_model_objects_and_bad_queries():
    assert model_json("agent-x", 0) == {
        "type": "model",
        "id": "agent-x",
        "display_name": "agent-x",
        "created_at": "1970-01-01T00:00:00Z",
    }
    assert page_of({"limit": "5", "after_id": "b"}) == ModelsPage(5, "b", None)
    for bad in ("0", "1001", "x"):
        with pytest.raises(InvalidRequest) as info:
            page_of({"limit": bad})
        assert info.value.param == "limit"
    with pytest.raises(InvalidRequest) as info:
        list_json(MODELS, ModelsPage(2, after_id="zz"))
    assert info.value.param == "after_id"
