import pytest

from modelyard.core.errors import InvalidRequest, UnsupportedCapability
from modelyard.protocols.validate import bad, each, get_str, nested, require_dict


def _name(raw: object) -> str:
    obj = require_dict(raw, "")
    return get_str(obj, "name", "name", required=True) or ""


def test_each_reads_every_element_in_order():
    assert each([{"name": "a"}, {"name": "b"}], "items", _name) == ["a", "b"]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"name": "a"}, 3], "items[1]: must be an object, got a number"),
        ([{"name": "a"}, {}], "items[1].name: is required"),
        ([{"name": 1}], "items[0].name: must be a string, got a number"),
    ],
)
def test_each_names_the_refused_element_whole(items, message):
    with pytest.raises(InvalidRequest) as info:
        each(items, "items", _name)
    assert info.value.message == message
    assert info.value.param == message.split(":")[0]
    assert info.value.code == "invalid_value"


def test_nested_joins_an_index_without_a_dot():
    assert nested("messages[0]", bad("[2].text", "is required")).param == "messages[0][2].text"


def test_nested_leaves_an_error_without_a_field_path_as_it_is():
    error = UnsupportedCapability("images", "m")
    assert nested("messages[0]", error) is error
