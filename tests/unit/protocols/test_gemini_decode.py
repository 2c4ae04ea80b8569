"""The Gemini dialect's request decoding: every field translated, passed on, or a 400 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.core.chat import ImagePart, NamedToolChoice, ResponseFormat, TextPart
from modelyard.core.errors import InvalidRequest
from modelyard.protocols.gemini.decode import (
    CACHED_CONTENT,
    GEMINI_TOOLS,
    decode_batch_embed,
    decode_count,
    decode_embed,
    decode_generate,
    model_name,
)
from modelyard.providers.extras import GEMINI_ONLY

USER = [{"role": "user", "parts": [{"text": "hello"}]}]


def _decode(**fields: Any) -> Any:
    return decode_generate({"contents": USER, **fields}, "chat", stream=False)


def _refused(body: Any, param: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        decode_generate(body, "chat", stream=False)
    assert caught.value.param == param, caught.value.message
    assert caught.value.status == 400
    return caught.value


def test_model_name_takes_the_resource_prefix():
    assert model_name("models/chat") == "chat" and model_name("chat") == "chat"


def test_plain_request_with_system_and_generation_config():
    request = decode_generate(
        {
            "contents": USER,
            "systemInstruction": {"parts": [{"text": "be brief"}, {"text": " and kind"}]},
            "generationConfig": {
                "temperature": 0.2,
                "topP": 0.9,
                "topK": 40,
                "maxOutputTokens": 64,
                "stopSequences": ["END"],
                "candidateCount": 2,
                "seed": 7,
                "presencePenalty": 0.5,
                "frequencyPenalty": -0.5,
                "responseModalities": ["TEXT"],
            },
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "cachedContent": "cachedContents/abc",
        },
        "chat",
        stream=True,
    )
    assert request.model == "chat" and request.stream and request.include_usage
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].text() == "be brief and kind"
    assert (request.temperature, request.top_p, request.max_tokens) == (0.2, 0.9, 64)
    assert (request.stop, request.n, request.seed) == (("END",), 2, 7)
    assert request.extra_origin == "gemini"
    assert request.extra == {
        "top_k": 40,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        CACHED_CONTENT: "cachedContents/abc",
    }


def test_gemini_only_names_match_the_adapters_list():
    assert frozenset({CACHED_CONTENT, GEMINI_TOOLS}) == GEMINI_ONLY


def test_function_call_and_response_round_trip_by_id_and_by_name():
    contents = [
        *USER,
        {
            "role": "model",
            "parts": [
                {"text": "thinking...", "thought": True},
                {"functionCall": {"id": "c1", "name": "ls", "args": {"dir": "/"}}},
                {"functionCall": {"name": "date", "args": {}}, "thoughtSignature": "c2ln"},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "c1", "name": "ls", "response": {"output": "a b"}}},
                {"functionResponse": {"name": "date", "response": {"result": 5}}},
                {"text": "and now?"},
            ],
        },
    ]
    messages = decode_generate({"contents": contents}, "chat", stream=False).messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "tool", "user"]
    model = messages[1]
    assert model.reasoning == "thinking..." and model.text() == ""
    first, second = model.tool_calls
    assert (first.id, first.name, first.arguments) == ("c1", "ls", '{"dir":"/"}')
    assert second.name == "date" and second.id.startswith("call_")
    # A plain {"output": text} result is sent as its text; any other result as JSON.
    assert (messages[2].tool_call_id, messages[2].text()) == ("c1", "a b")
    assert (messages[3].tool_call_id, messages[3].text()) == (second.id, '{"result":5}')
    assert messages[3].name == "date"
    assert messages[4].text() == "and now?"


def test_function_response_without_a_call_is_refused():
    contents = [{"role": "user", "parts": [{"functionResponse": {"name": "x", "response": {}}}]}]
    _refused({"contents": contents}, "contents[0].parts[0].functionResponse.name")


def test_images_inline_and_by_uri():
    parts = [
        {"text": "what is this"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}},
    ]
    (message,) = decode_generate({"contents": [{"parts": parts}]}, "m", stream=False).messages
    assert message.content == (
        TextPart("what is this"),
        ImagePart("data:image/png;base64,iVBOR"),
        ImagePart("https://example.com/a.jpg"),
    )


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}, ".inlineData.mimeType"),
        ({"executableCode": {"code": "1"}}, ".executableCode"),
        ({"text": "a", "inlineData": {}}, ""),
        ({"functionCall": {"name": "f"}}, ".functionCall"),
    ],
)
def test_parts_that_cannot_be_carried_are_refused(part: dict[str, Any], param: str):
    _refused({"contents": [{"role": "user", "parts": [part]}]}, f"contents[0].parts[0]{param}")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"contents": USER, "labels": {}}, "labels"),
        ({"contents": []}, "contents"),
        ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
        ({"contents": USER, "generationConfig": {"logprobs": 3}}, "generationConfig.logprobs"),
        (
            {"contents": USER, "generationConfig": {"responseModalities": ["IMAGE"]}},
            "generationConfig.responseModalities",
        ),
        (
            {"contents": USER, "generationConfig": {"temperature": 3}},
            "generationConfig.temperature",
        ),
        (
            {"contents": USER, "generationConfig": {"responseMimeType": "text/x.enum"}},
            "generationConfig.responseMimeType",
        ),
        (
            {"contents": USER, "systemInstruction": {"parts": [{"inlineData": {}}]}},
            "systemInstruction.parts[0]",
        ),
    ],
)
def test_unsupported_fields_are_refused_by_name(body: dict[str, Any], param: str):
    _refused(body, param)


def test_json_output_with_either_schema_kind():
    plain = _decode(generationConfig={"responseMimeType": "application/json"})
    assert plain.response_format == ResponseFormat("json_object")
    openapi = {
        "type": "OBJECT",
        "properties": {"n": {"type": "INTEGER", "nullable": True}},
        "required": ["n"],
        "propertyOrdering": ["n"],
    }
    converted = _decode(
        generationConfig={"responseMimeType": "application/json", "responseSchema": openapi}
    )
    assert converted.response_format is not None
    assert converted.response_format.schema == {
        "type": "object",
        "properties": {"n": {"type": ["integer", "null"]}},
        "required": ["n"],
    }
    schema = {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}
    direct = _decode(
        generationConfig={"responseMimeType": "application/json", "responseJsonSchema": schema}
    )
    assert direct.response_format == ResponseFormat("json_schema", schema=schema, name="response")


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"thinkingLevel": "HIGH", "includeThoughts": True}, "high"),
        ({"thinkingBudget": 0}, "none"),
        ({"thinkingBudget": 512}, "low"),
        ({"thinkingBudget": 8192}, "medium"),
        ({"thinkingBudget": 20000}, "high"),
        ({"thinkingBudget": -1, "includeThoughts": True}, None),
    ],
)
def test_thinking_config_becomes_an_effort(thinking: dict[str, Any], effort: str | None):
    request = _decode(generationConfig={"thinkingConfig": thinking})
    assert request.extra.get("reasoning_effort") == effort


def test_tools_declarations_and_gemini_tools():
    tools = [
        {
            "functionDeclarations": [
                {
                    "name": "run",
                    "description": "run a command",
                    "parameters": {"type": "OBJECT", "properties": {"cmd": {"type": "STRING"}}},
                },
                {"name": "now", "parametersJsonSchema": {"type": "object"}},
                {"name": "bare"},
            ]
        },
        {"googleSearch": {}},
        {"codeExecution": {}},
    ]
    request = _decode(
        tools=tools,
        toolConfig={"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["run"]}},
    )
    run, now, bare = request.tools
    assert run.parameters == {"type": "object", "properties": {"cmd": {"type": "string"}}}
    assert (run.name, run.description) == ("run", "run a command")
    assert now.parameters == {"type": "object"}
    assert bare.parameters == {"type": "object", "properties": {}}
    assert request.tool_choice == NamedToolChoice("run")
    assert request.extra[GEMINI_TOOLS] == [{"googleSearch": {}}, {"codeExecution": {}}]


@pytest.mark.parametrize(
    ("config", "choice"),
    [({"mode": "AUTO"}, "auto"), ({"mode": "NONE"}, "none"), ({"mode": "ANY"}, "required")],
)
def test_function_calling_modes(config: dict[str, Any], choice: str):
    tools = [{"functionDeclarations": [{"name": "f"}]}]
    request = _decode(tools=tools, toolConfig={"functionCallingConfig": config})
    assert request.tool_choice == choice


def test_count_tokens_takes_contents_or_a_whole_request():
    assert decode_count({"contents": USER}, "chat").messages[0].text() == "hello"
    whole = {"generateContentRequest": {"contents": USER, "systemInstruction": "sys"}}
    assert [m.role for m in decode_count(whole, "chat").messages] == ["system", "user"]


def test_embed_content_and_batches():
    single = decode_embed(
        {
            "content": {"parts": [{"text": "a"}]},
            "taskType": "RETRIEVAL_QUERY",
            "outputDimensionality": 8,
        },
        "emb",
    )
    assert (single.inputs, single.dimensions) == (["a"], 8)
    assert single.extra == {"task_type": "RETRIEVAL_QUERY"}
    batch = decode_batch_embed(
        {"requests": [{"model": "models/emb", "content": {"parts": [{"text": t}]}} for t in "xy"]},
        "emb",
    )
    assert batch.inputs == ["x", "y"]
    with pytest.raises(InvalidRequest) as caught:
        decode_batch_embed({"requests": [{"content": {"parts": [{"inlineData": {}}]}}]}, "emb")
    assert caught.value.param == "requests[0].content.parts[0]"


def test_snake_case_field_names_are_read_as_google_reads_them():
    # What google-genai sends for nested objects; the property names of schemas stay as given.
    request = decode_generate(
        {
            "contents": [
                {"parts": [{"inline_data": {"mime_type": "image/png", "data": "iVBOR"}}]},
            ],
            "generation_config": {
                "max_output_tokens": 9,
                "thinking_config": {"thinking_budget": 0},
            },
            "tools": [
                {
                    "function_declarations": [
                        {
                            "name": "f",
                            "parameters_json_schema": {
                                "type": "object",
                                "properties": {"snake_name": {"type": "string"}},
                            },
                        }
                    ]
                }
            ],
        },
        "chat",
        stream=False,
    )
    assert request.messages[0].content == (ImagePart("data:image/png;base64,iVBOR"),)
    assert request.max_tokens == 9 and request.extra["reasoning_effort"] == "none"
    assert request.tools[0].parameters == {
        "type": "object",
        "properties": {"snake_name": {"type": "string"}},
    }


def test_unknown_declaration_fields_are_refused():
    tools = [{"functionDeclarations": [{"name": "f", "parameterz": {}}]}]
    _refused({"contents": USER, "tools": tools}, "tools[0].functionDeclarations[0].parameterz")


# Field paths are made only when a request is refused (``validate.nested``): each case names
# the field whole, at every depth, in the message and in ``param``.
_CALL = {"role": "model", "parts": [{"functionCall": {"name": "f", "id": "c1"}}]}
_SCHEMA_TOOL = {
    "functionDeclarations": [
        {"name": "ok"},
        {
            "name": "f",
            "parameters": {
                "type": "OBJECT",
                "properties": {
                    "a": {"type": "ARRAY", "items": {"anyOf": [{"type": "STRING"}, {"type": 3}]}}
                },
            },
        },
    ]
}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"contents": [*USER, _CALL, {"parts": [{"text": "a"}, {"functionCall": {}}]}]},
            "contents[2].parts[1].functionCall: is only allowed in a model turn",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"text": "a"}, {"fileData": {}}]}]},
            "contents[0].parts[1].fileData: is not allowed in a model turn "
            "(text and functionCall are)",
        ),
        (
            {"contents": [*USER, {"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
            "contents[1].parts[0].functionCall.name: is required",
        ),
        (
            {"contents": [*USER, {"parts": [{"inline_data": {"mime_type": "image/png"}}]}]},
            "contents[1].parts[0].inlineData.data: is required",
        ),
        (
            {"contents": [*USER, {"parts": [{"fileData": {"mimeType": "image/png"}}]}]},
            "contents[1].parts[0].fileData.fileUri: is required",
        ),
        (
            {"contents": [_CALL, {"parts": [{"functionResponse": {"name": "g", "response": {}}}]}]},
            "contents[1].parts[0].functionResponse.name: answers function 'g', but no earlier "
            "functionCall of that name is open; send the call's id",
        ),
        (
            {
                "contents": [
                    _CALL,
                    {"parts": [{"functionResponse": {"name": "f", "response": {}, "parts": [{}]}}]},
                ]
            },
            "contents[1].parts[0].functionResponse.parts: multimodal function responses are "
            "not supported",
        ),
        ({"contents": [*USER, "hi"]}, "contents[1]: must be an object, got a string"),
        (
            {"contents": [{"parts": [{}]}]},
            "contents[0].parts[0]: must hold exactly one of "
            "text, inlineData, fileData, functionCall, functionResponse; got none",
        ),
        (
            {"contents": USER, "systemInstruction": {"parts": [{"text": "a"}, {"text": 1}]}},
            "systemInstruction.parts[1].text: must be a string, got a number",
        ),
        (
            {"contents": USER, "tools": [{"googleSearch": {}}, _SCHEMA_TOOL]},
            "tools[1].functionDeclarations[1].parameters.properties.a.items.anyOf[1].type: "
            "must be a string such as OBJECT or STRING",
        ),
        (
            {"contents": USER, "tools": [{"functionDeclarations": [{"name": "f"}], "x": {}}]},
            "tools[0]: put functionDeclarations and other tools in separate tool objects",
        ),
        (
            {"contents": USER, "tools": [{"functionDeclarations": [{"name": "f"}, {}]}]},
            "tools[0].functionDeclarations[1].name: is required",
        ),
        (
            {
                "contents": USER,
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseSchema": {"properties": {"": {"items": {"nope": 1}}}},
                },
            },
            "generationConfig.responseSchema.properties..items.nope: is not a keyword of "
            "Gemini's Schema",
        ),
        (
            {"contents": USER, "generationConfig": {"thinkingConfig": {"thinkingBudget": -2}}},
            "generationConfig.thinkingConfig.thinkingBudget: must be at least -1, got -2",
        ),
        (
            {"contents": USER, "generationConfig": {"topK": "many"}},
            "generationConfig.topK: must be a number, got a string",
        ),
        (
            {"contents": USER, "toolConfig": {"functionCallingConfig": {"mode": 1}}},
            "toolConfig.functionCallingConfig.mode: must be a string, got a number",
        ),
    ],
)
def test_a_refused_field_is_named_whole_at_any_depth(body: dict[str, Any], message: str):
    error = _refused(body, message.split(": ", maxsplit=1)[0])
    assert error.message == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"requests": [{"content": {"parts": [{"text": "a"}]}}, 3]},
            "requests[1]: must be an object, got a number",
        ),
        (
            {"requests": [{"content": {"parts": [{"text": "a"}]}, "title": "t"}]},
            "requests[0].title: is not supported",
        ),
        (
            {"requests": [{"content": {"parts": [{"text": "a"}, {"text": 2}]}}]},
            "requests[0].content.parts[1].text: must be a string, got a number",
        ),
        (
            {"requests": [{"content": {"parts": [{"text": "a"}]}, "task_type": 1}]},
            "requests[0].taskType: must be a string, got a number",
        ),
    ],
)
def test_a_refused_batch_embedding_names_its_request(body: dict[str, Any], message: str):
    with pytest.raises(InvalidRequest) as caught:
        decode_batch_embed(body, "emb")
    assert (caught.value.message, caught.value.param) == (
        message,
        message.split(": ", maxsplit=1)[0],
    )


def test_a_refused_single_embedding_names_the_field_alone():
    with pytest.raises(InvalidRequest) as caught:
        decode_embed({"content": {"parts": [{"text": "a"}, {"text": "b", "x": 1}]}}, "emb")
    assert caught.value.message == "content.parts[1]: only text parts can be embedded"
    with pytest.raises(InvalidRequest) as caught:
        decode_embed([], "emb")
    assert caught.value.message == "body: must be an object, got an array"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Before, a TypeError (a 500): names of other types do not sort with strings.
        (
            {
                "contents": USER,
                "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}],
                "toolConfig": {
                    "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f", 1]}
                },
            },
            "toolConfig.functionCallingConfig.allowedFunctionNames: must name one function, "
            "or all of them",
        ),
        # Before, a TypeError (a 500) with ``nullable``, or sent upstream as it was without it.
        (
            {
                "contents": USER,
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseSchema": {"type": "STRING", "enum": "a", "nullable": True},
                },
            },
            "generationConfig.responseSchema.enum: must be an array of values",
        ),
        (
            {
                "contents": USER,
                "tools": [
                    {
                        "functionDeclarations": [
                            {"name": "f", "parameters": {"properties": {"a": {"enum": 3}}}}
                        ]
                    }
                ],
            },
            "tools[0].functionDeclarations[0].parameters.properties.a.enum: must be an array of "
            "values",
        ),
    ],
)
def test_values_of_the_wrong_type_are_refused_not_failed_on(body: dict[str, Any], message: str):
    assert _refused(body, message.split(": ", maxsplit=1)[0]).message == message
