"""Converse request building, response parsing, error classification, Titan bodies, region."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import (
    ChatRequest,
    ImagePart,
    Message,
    NamedToolChoice,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from modelyard.core.embeddings import EmbeddingRequest
from modelyard.core.errors import (
    InvalidRequest,
    RateLimited,
    UnsupportedCapability,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelyard.providers.bedrock import codec, embeddings, errors, signing
from modelyard.providers.bedrock.messages import tool_use_id
from modelyard.providers.bedrock.response import ResponseInfo, parse_converse

OPTIONS = codec.BuildOptions("br")
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TOOL = ToolSpec("lookup", "Look up", {"type": "object", "properties": {"q": {"type": "string"}}})


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def build(
    *messages: Message, options: codec.BuildOptions = OPTIONS, **fields: Any
) -> codec.ConverseRequest:
    return codec.build_request(ChatRequest("d", list(messages), **fields), MODEL, options)


def test_roles_system_and_merging() -> None:
    request = build(
        Message("system", (TextPart("a"),)),
        user("one"),
        Message("developer", (TextPart("b"),)),
        user("two"),
        Message("assistant", (TextPart("three"),)),
        user(""),
        user("four"),
    )
    assert request.body == {
        "system": [{"text": "a"}, {"text": "b"}],
        "messages": [
            {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
            {"role": "assistant", "content": [{"text": "three"}]},
            {"role": "user", "content": [{"text": "four"}]},
        ],
    }
    assert request.json_tool is None


def test_tool_calls_and_results() -> None:
    calls = (ToolCall("call_1", "lookup", '{"q": "a"}'), ToolCall("call_2", "lookup", ""))
    request = build(
        user("go"),
        Message("assistant", (TextPart("checking"),), tool_calls=calls),
        Message("tool", (TextPart("A"),), tool_call_id="call_1"),
        Message("tool", (), tool_call_id="call_2"),
        user("thanks"),
        tools=(TOOL,),
    )
    turns = request.body["messages"]
    assert turns[1]["content"] == [
        {"text": "checking"},
        {"toolUse": {"toolUseId": "call_1", "name": "lookup", "input": {"q": "a"}}},
        {"toolUse": {"toolUseId": "call_2", "name": "lookup", "input": {}}},
    ]
    assert turns[2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "call_1", "content": [{"text": "A"}]}},
            {"toolResult": {"toolUseId": "call_2", "content": [{"text": ""}]}},
            {"text": "thanks"},
        ],
    }
    assert request.body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "lookup",
                    "description": "Look up",
                    "inputSchema": {"json": dict(TOOL.parameters or {})},
                }
            }
        ]
    }


def test_tool_ids_are_made_acceptable() -> None:
    assert tool_use_id("call_abc-1.2:3") == "call_abc-1.2:3"
    assert tool_use_id("toolu/01 x") == "toolu_01_x"
    long = tool_use_id("x" * 100)
    assert len(long) == 64 and long != tool_use_id("x" * 99)


@pytest.mark.parametrize(
    ("arguments", "message"), [("{nope", "not valid JSON"), ("[1]", "must be a JSON object")]
)
def test_bad_tool_arguments_name_the_field(arguments: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        build(user("x"), Message("assistant", tool_calls=(ToolCall("c", "lookup", arguments),)))
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        (NamedToolChoice("lookup"), {"tool": {"name": "lookup"}}),
        (None, None),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any] | None) -> None:
    config = build(user("x"), tools=(TOOL,), tool_choice=choice).body["toolConfig"]
    assert config.get("toolChoice") == expected


def test_tool_choice_none_offers_no_tools() -> None:
    assert "toolConfig" not in build(user("x"), tools=(TOOL,), tool_choice="none").body


def test_tool_choice_none_keeps_tools_when_the_history_has_tool_blocks() -> None:
    history = (
        user("x"),
        Message("assistant", tool_calls=(ToolCall("c", "lookup", "{}"),)),
        Message("tool", (TextPart("r"),), tool_call_id="c"),
    )
    config = build(*history, tools=(TOOL,), tool_choice="none").body["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["lookup"]
    assert "toolChoice" not in config
    declared = build(*history).body["toolConfig"]["tools"]
    assert declared == [
        {
            "toolSpec": {
                "name": "lookup",
                "inputSchema": {"json": {"type": "object", "properties": {}}},
            }
        }
    ]


def test_tool_choice_errors() -> None:
    with pytest.raises(InvalidRequest, match="needs tools"):
        build(user("x"), tool_choice="required")
    with pytest.raises(InvalidRequest, match="no tool named 'other'"):
        build(user("x"), tools=(TOOL,), tool_choice=NamedToolChoice("other"))


def test_images() -> None:
    image = ImagePart("data:image/jpeg;base64,/9j/4AAQ")
    content = build(Message("user", (TextPart("see"), image))).body["messages"][0]["content"]
    assert content[1] == {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}}
    with pytest.raises(
        UnsupportedCapability, match=r"image URLs \(send base64 data: URLs\)"
    ) as info:
        build(Message("user", (ImagePart("https://x.test/a.png"),)))
    assert info.value.param == "messages[0].content[0].image_url"
    with pytest.raises(InvalidRequest, match="image/bmp"):
        build(Message("user", (ImagePart("data:image/bmp;base64,Qk0="),)))
    with pytest.raises(InvalidRequest, match="not valid base64"):
        build(Message("user", (ImagePart("data:image/png;base64,@@@"),)))


def test_inference_config_and_metadata() -> None:
    body = build(
        user("x"),
        max_tokens=10,
        temperature=0.5,
        top_p=0.8,
        stop=("a", "b"),
        user="u-1",
        metadata={"team": "t"},
    ).body
    assert body["inferenceConfig"] == {
        "maxTokens": 10,
        "temperature": 0.5,
        "topP": 0.8,
        "stopSequences": ["a", "b"],
    }
    assert body["requestMetadata"] == {"team": "t", "user": "u-1"}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"seed": 7}, "seed"),
        ({"extra": {"logit_bias": {"1": 5}}}, "logit_bias"),
        ({"extra": {"presence_penalty": 0.5}}, "presence_penalty"),
        ({"extra": {"top_k": 5}}, "top_k"),
        ({"extra": {"reasoning_effort": "extreme"}}, "reasoning_effort"),
    ],
)
def test_unhonourable_fields_are_refused_by_name(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        build(user("x"), **fields)
    assert info.value.param == param
    assert param in info.value.message


def test_defaults_pass_and_converse_fields_pass_through() -> None:
    extra = {
        "logprobs": False,
        "presence_penalty": 0,
        "store": True,
        "additionalModelRequestFields": {"top_k": 5},
        "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"},
        "reasoning_effort": "minimal",
    }
    body = build(user("x"), n=1, extra=extra).body
    assert body["additionalModelRequestFields"] == {"top_k": 5}
    assert body["guardrailConfig"] == {"guardrailIdentifier": "g", "guardrailVersion": "1"}
    assert body["outputConfig"] == {"effort": "low"}
    assert "logprobs" not in body and "store" not in body


def test_reasoning_goes_back_only_with_its_signature() -> None:
    signed = Message("assistant", (TextPart("a"),), reasoning="hm", reasoning_signature="sig")
    unsigned = Message("assistant", (TextPart("b"),), reasoning="hm")
    turns = build(user("x"), signed, user("y"), unsigned, user("z")).body["messages"]
    assert turns[1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "sig"}}},
        {"text": "a"},
    ]
    assert turns[3]["content"] == [{"text": "b"}]


def test_json_schema_through_a_tool() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    request = build(user("x"), response_format=ResponseFormat("json_schema", schema, "out"))
    assert request.json_tool == "json_out"
    config = request.body["toolConfig"]
    assert config["toolChoice"] == {"tool": {"name": "json_out"}}
    assert config["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}
    with_tools = build(user("x"), tools=(TOOL,), response_format=ResponseFormat("json_object"))
    assert with_tools.body["toolConfig"]["toolChoice"] == {"any": {}}
    assert [t["toolSpec"]["name"] for t in with_tools.body["toolConfig"]["tools"]] == [
        "lookup",
        "json_response",
    ]
    with pytest.raises(InvalidRequest, match="root is an object"):
        build(user("x"), response_format=ResponseFormat("json_schema", {"type": "array"}))


def test_json_schema_native() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    native = codec.BuildOptions("br", "native")
    request = build(
        user("x"), options=native, response_format=ResponseFormat("json_schema", schema, "list")
    )
    assert request.json_tool is None
    assert "toolConfig" not in request.body
    text_format = request.body["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    assert text_format["structure"]["jsonSchema"]["name"] == "list"
    assert orjson.loads(text_format["structure"]["jsonSchema"]["schema"]) == schema


def _info(json_tool: str | None = None) -> ResponseInfo:
    return ResponseInfo(json_tool, "provider 'br'", MODEL, "rid")


def _answer(
    content: list[dict[str, Any]], stop: str = "end_turn", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": usage or {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
    }


def test_parse_response_blocks() -> None:
    content: list[dict[str, Any]] = [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s1"}}},
        {"text": "Sure."},
        {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "é"}}},
    ]
    result = parse_converse(_answer(content, "tool_use"), _info())
    message = result.choices[0].message
    assert message.text() == "Sure."
    assert message.reasoning == "hmm" and message.reasoning_signature == "s1"
    assert message.tool_calls == (ToolCall("t1", "lookup", '{"q":"é"}'),)
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.upstream_id == "rid"


def test_parse_response_folds_the_json_tool() -> None:
    content = [{"toolUse": {"toolUseId": "t1", "name": "json_out", "input": {"a": 1}}}]
    result = parse_converse(_answer(content, "tool_use"), _info("json_out"))
    assert result.choices[0].message.text() == '{"a":1}'
    assert result.choices[0].message.tool_calls == ()
    assert result.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, reason: str) -> None:
    assert (
        parse_converse(_answer([{"text": "x"}], stop), _info()).choices[0].finish_reason == reason
    )


def test_malformed_output_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError, match="malformed_tool_use"):
        parse_converse(_answer([{"text": "x"}], "malformed_tool_use"), _info())
    with pytest.raises(UpstreamError, match="malformed answer"):
        parse_converse({"output": {}}, _info())


def test_usage_adds_cache_counts_to_input() -> None:
    usage = {
        "inputTokens": 10,
        "outputTokens": 5,
        "totalTokens": 315,
        "cacheReadInputTokens": 200,
        "cacheWriteInputTokens": 100,
    }
    result = parse_converse(_answer([{"text": "x"}], usage=usage), _info())
    assert result.usage == Usage(
        input_tokens=310, output_tokens=5, cached_input_tokens=200, cache_write_tokens=100
    )
    assert result.usage.total_tokens == usage["totalTokens"]


def test_usage_keeps_the_one_hour_part_of_the_cache_writes() -> None:
    usage = {
        "inputTokens": 10,
        "outputTokens": 5,
        "cacheWriteInputTokens": 100,
        # Sorted by TTL, 1h first, as Converse sends them.
        "cacheDetails": [{"inputTokens": 70, "ttl": "1h"}, {"inputTokens": 30, "ttl": "5m"}],
    }
    result = parse_converse(_answer([{"text": "x"}], usage=usage), _info())
    assert result.usage == Usage(
        input_tokens=110, output_tokens=5, cache_write_tokens=100, cache_write_1h_tokens=70
    )
    # A detail that claims more than the writes counts as the writes, never more.
    usage["cacheDetails"] = [{"inputTokens": 500, "ttl": "1h"}]
    result = parse_converse(_answer([{"text": "x"}], usage=usage), _info())
    assert result.usage is not None and result.usage.cache_write_1h_tokens == 100


@pytest.mark.parametrize(
    ("name", "status", "error", "code"),
    [
        ("ValidationException", 400, InvalidRequest, "upstream_rejected"),
        ("AccessDeniedException", 403, UpstreamError, "upstream_auth"),
        ("UnrecognizedClientException", 403, UpstreamError, "upstream_auth"),
        ("ResourceNotFoundException", 404, UpstreamError, "upstream_not_found"),
        ("ThrottlingException", 429, RateLimited, "upstream_rate_limited"),
        ("ServiceQuotaExceededException", 400, RateLimited, "upstream_rate_limited"),
        ("ModelNotReadyException", 429, UpstreamUnavailable, "upstream_unavailable"),
        ("ModelTimeoutException", 408, UpstreamTimeout, "upstream_timeout"),
        ("ModelErrorException", 424, UpstreamError, "upstream_model_error"),
        ("InternalServerException", 500, UpstreamError, "upstream_error"),
        ("ServiceUnavailableException", 503, UpstreamUnavailable, "upstream_unavailable"),
        (None, 413, InvalidRequest, "request_too_large"),
    ],
)
def test_http_errors(name: str | None, status: int, error: type, code: str | None) -> None:
    headers = {"x-amzn-errortype": f"{name}:http://internal.amazon.com/coral/"} if name else {}
    body = orjson.dumps({"message": "secret-ish text AKIA123"})
    classified = errors.classify_http(status, headers, body, "provider 'br'")
    assert type(classified) is error
    assert classified.code == code
    if status == 403:
        assert "AKIA123" not in classified.message
    else:
        assert "AKIA123" in classified.message


def test_error_name_from_the_body_when_the_header_is_missing() -> None:
    body = orjson.dumps({"__type": "com.amazon#ThrottlingException", "message": "slow down"})
    assert isinstance(errors.classify_http(400, {}, body, "p"), RateLimited)


def test_titan_bodies() -> None:
    calls = embeddings.titan_calls(
        EmbeddingRequest("e", ["a", "b"], dimensions=512, extra={"normalize": False}),
        "amazon.titan-embed-text-v2:0",
    )
    assert [orjson.loads(c.body) for c in calls] == [
        {"inputText": "a", "normalize": False, "dimensions": 512},
        {"inputText": "b", "normalize": False, "dimensions": 512},
    ]
    v1 = embeddings.titan_calls(EmbeddingRequest("e", ["a"]), "amazon.titan-embed-text-v1")
    assert orjson.loads(v1[0].body) == {"inputText": "a"}
    with pytest.raises(InvalidRequest, match="dimensions"):
        embeddings.titan_calls(
            EmbeddingRequest("e", ["a"], dimensions=256), "amazon.titan-embed-text-v1"
        )
    with pytest.raises(InvalidRequest, match="normalize"):
        embeddings.titan_calls(
            EmbeddingRequest("e", ["a"], extra={"normalize": True}), "amazon.titan-embed-text-v1"
        )
    with pytest.raises(UnsupportedCapability, match="token-array"):
        embeddings.titan_calls(EmbeddingRequest("e", [[1, 2]]), "amazon.titan-embed-text-v2:0")
    with pytest.raises(UnsupportedCapability, match="Titan"):
        embeddings.titan_calls(EmbeddingRequest("e", ["a"]), "cohere.embed-english-v3")


def test_region_resolution() -> None:
    assert signing.resolve_region({"region": "eu-west-3"}, {"AWS_REGION": "x"}) == "eu-west-3"
    assert (
        signing.resolve_region({}, {"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "y"})
        == "ap-south-1"
    )
    assert signing.resolve_region({}, {"AWS_DEFAULT_REGION": "us-west-2"}) == "us-west-2"
    assert signing.resolve_region({}, {}) == "us-east-1"
    assert signing.endpoint("eu-west-3") == "https://bedrock-runtime.eu-west-3.amazonaws.com"


def test_authenticator_choice() -> None:
    assert isinstance(signing.make_authenticator("k", "r", "p", {}), signing.BearerAuth)
    from_env = signing.make_authenticator(None, "r", "p", {"AWS_BEARER_TOKEN_BEDROCK": "k"})
    assert isinstance(from_env, signing.BearerAuth)
    assert isinstance(signing.make_authenticator(None, "r", "p", {}), signing.SigV4Signer)
