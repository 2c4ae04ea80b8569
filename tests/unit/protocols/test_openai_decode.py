import pytest

from modelyard.core.chat import ImagePart, NamedToolChoice, TextPart
from modelyard.core.errors import InvalidRequest
from modelyard.protocols.openai.decode import decode_chat, decode_embeddings


def _body(**kw: object) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **kw}


def test_minimal_request():
    req = decode_chat(_body())
    assert req.model == "m"
    assert req.messages[0].content == (TextPart("hi"),)
    assert not req.stream and not req.include_usage


def test_full_request_fields():
    req = decode_chat(
        _body(
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=5,
            max_tokens=99,
            temperature=0.5,
            top_p=0.9,
            stop="END",
            seed=7,
            n=2,
            tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
            ],
            tool_choice={"type": "function", "function": {"name": "f"}},
            parallel_tool_calls=False,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            user="u",
            metadata={"a": "b"},
            logit_bias={"1": 2},
        )
    )
    assert req.stream and req.include_usage
    assert req.max_tokens == 5  # max_completion_tokens wins over the legacy field
    assert req.stop == ("END",)
    assert req.tools[0].name == "f"
    assert req.tool_choice == NamedToolChoice("f")
    assert req.response_format is not None and req.response_format.kind == "json_schema"
    assert req.extra == {"logit_bias": {"1": 2}}


def test_image_parts_and_tool_messages():
    req = decode_chat(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
        }
    )
    assert isinstance(req.messages[0].content[1], ImagePart)
    assert req.has_images()
    assert req.messages[1].tool_calls[0].id == "c1"
    assert req.messages[2].tool_call_id == "c1"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (_body(temperature="hot"), "temperature"),
        (_body(temperature=3), "temperature"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(n=True), "n"),
        (_body(stop=["a", "b", "c", "d", "e"]), "stop"),
        (_body(tools=[{"type": "retrieval"}]), "tools[0].type"),
        (_body(tool_choice="sometimes"), "tool_choice"),
        (_body(response_format={"type": "xml"}), "response_format.type"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_errors_name_the_field(body, param):
    with pytest.raises(InvalidRequest) as info:
        decode_chat(body)
    assert info.value.param == param
    assert param in info.value.message


def test_body_must_be_an_object():
    with pytest.raises(InvalidRequest):
        decode_chat([1, 2])


def test_embeddings_inputs():
    assert decode_embeddings({"model": "e", "input": "a"}).inputs == ["a"]
    assert decode_embeddings({"model": "e", "input": ["a", "b"]}).inputs == ["a", "b"]
    assert decode_embeddings({"model": "e", "input": [1, 2]}).inputs == [[1, 2]]
    with pytest.raises(InvalidRequest) as info:
        decode_embeddings({"model": "e", "input": []})
    assert info.value.param == "input"
    with pytest.raises(InvalidRequest) as info:
        decode_embeddings({"model": "e", "input": "a", "encoding_format": "hex"})
    assert info.value.param == "encoding_format"


_CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"role": "user", "content": "x"}, 7], "messages[1]: must be an object, got a number"),
        (
            [{"role": "user", "content": "x"}, {"role": "user", "content": ["x"]}],
            "messages[1].content[0]: must be an object, got a string",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text"}]}],
            "messages[0].content[1].text: is required",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 3}}]}],
            "messages[0].content[0].image_url.url: must be a string, got a number",
        ),
        (
            [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}],
            "messages[0].content[0].type: content part type 'image_url' is not supported here;"
            " accepted: text",
        ),
        (
            [{"role": "assistant", "tool_calls": [_CALL, {**_CALL, "function": {"name": 1}}]}],
            "messages[0].tool_calls[1].function.name: must be a string, got a number",
        ),
        (
            [{"role": "assistant", "tool_calls": [{"type": "custom", "id": "c", "custom": {}}]}],
            "messages[0].tool_calls[0].custom.name: is required",
        ),
        (
            [{"role": "assistant", "tool_calls": {}}],
            "messages[0].tool_calls: must be an array, got an object",
        ),
        (
            [{"role": "assistant"}],
            "messages[0].content: an assistant message needs content, tool_calls or refusal",
        ),
        (
            [{"role": "user", "content": "x", "name": False}],
            "messages[0].name: must be a string, got a boolean",
        ),
    ],
)
def test_errors_name_the_nested_field_whole(messages, message):
    """A message's fields are read with paths relative to it; the error names the whole path."""
    with pytest.raises(InvalidRequest) as info:
        decode_chat({"model": "m", "messages": messages})
    assert info.value.message == message
    assert info.value.param == message.split(":")[0]
    assert info.value.code == "invalid_value"
