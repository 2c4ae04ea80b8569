from typing import Any

import orjson
import pytest

from modelyard.core.chat import ChatRequest, Message, TextPart, ToolCall
from modelyard.core.errors import (
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelyard.core.events import Finished, ReasoningDelta, TextDelta, ToolCallDelta, UsageReport
from modelyard.providers.openai_compatible import codec
from modelyard.providers.openai_compatible.errors import classify_error
from modelyard.providers.openai_compatible.presets import PRESETS
from modelyard.providers.transport import retry_after_seconds


def _req(**kw: Any) -> ChatRequest:
    return ChatRequest(
        model="dep",
        messages=[
            Message("developer", (TextPart("be brief"),)),
            Message("user", (TextPart("hi"),)),
        ],
        **kw,
    )


def test_body_uses_upstream_model_and_preset_quirks():
    body = orjson.loads(
        codec.build_body(
            _req(max_tokens=5, extra={"logit_bias": {}}), "gpt", PRESETS["openai"], True
        )
    )
    assert body["model"] == "gpt"
    assert body["max_completion_tokens"] == 5
    assert body["messages"][0] == {"role": "developer", "content": "be brief"}
    assert body["stream_options"] == {"include_usage": True}
    assert body["logit_bias"] == {}
    other = orjson.loads(codec.build_body(_req(max_tokens=5), "m", PRESETS["mistral"], True))
    assert other["max_tokens"] == 5 and "max_completion_tokens" not in other
    assert other["messages"][0]["role"] == "system"
    assert "stream_options" not in other


def test_parse_chunk_events():
    events = codec.parse_chunk(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "reasoning_content": "hmm",
                        "content": "a",
                        "tool_calls": [
                            {"index": 1, "id": "c", "function": {"name": "f", "arguments": ""}}
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {
                "prompt_tokens": 2,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 1},
            },
        }
    )
    assert events[0] == ReasoningDelta("hmm")
    assert events[1] == TextDelta("a")
    assert events[2] == ToolCallDelta(1, "", id="c", name="f")
    assert events[3] == Finished("tool_calls")
    assert isinstance(events[4], UsageReport) and events[4].usage.cached_input_tokens == 1


def test_malformed_completion_is_an_upstream_error():
    with pytest.raises(UpstreamError):
        codec.parse_response({"nope": 1}, "p")


@pytest.mark.parametrize(
    ("status", "kind", "client_status"),
    [
        (400, InvalidRequest, 400),
        (401, UpstreamError, 502),
        (404, UpstreamError, 502),
        (408, UpstreamTimeout, 504),
        (413, InvalidRequest, 400),
        (402, UpstreamError, 502),
        (429, RateLimited, 429),
        (500, UpstreamError, 502),
        (503, UpstreamUnavailable, 503),
        (529, UpstreamUnavailable, 503),
        (504, UpstreamTimeout, 504),
    ],
)
def test_classify_error(status, kind, client_status):
    body = orjson.dumps({"error": {"message": "boom sk-secret", "param": "messages"}})
    err = classify_error(status, {"retry-after": "3"}, body, "provider 'p'")
    assert type(err) is kind
    assert err.status == client_status
    if status == 401:
        assert "sk-secret" not in err.message  # upstream text may echo key fragments
    else:
        assert "boom" in err.message
    if status == 429:
        assert err.retry_after == 3.0


def test_classify_non_json_error_body():
    err = classify_error(502, {}, b"<html>bad gateway</html>", "p")
    assert "bad gateway" in err.message


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_vendor_usage_quirks():
    deepseek = codec.parse_usage(
        {"prompt_tokens": 10, "completion_tokens": 4, "prompt_cache_hit_tokens": 6},
        PRESETS["deepseek"],
    )
    assert deepseek is not None and deepseek.cached_input_tokens == 6
    grok = codec.parse_usage(
        {
            "prompt_tokens": 5,
            "completion_tokens": 50,
            "completion_tokens_details": {"reasoning_tokens": 30},
        },
        PRESETS["xai"],
    )
    assert grok is not None and grok.output_tokens == 80 and grok.reasoning_tokens == 30
    openai_usage = codec.parse_usage(
        {
            "prompt_tokens": 5,
            "completion_tokens": 50,
            "completion_tokens_details": {"reasoning_tokens": 30},
        },
        PRESETS["openai"],
    )
    assert openai_usage is not None and openai_usage.output_tokens == 50
    groq = codec.parse_chunk(
        {"choices": [], "x_groq": {"usage": {"prompt_tokens": 1, "completion_tokens": 2}}},
        PRESETS["groq"],
    )
    assert isinstance(groq[0], UsageReport) and groq[0].usage.total_tokens == 3


def test_mistral_quirks():
    req = ChatRequest(
        model="d",
        messages=[
            Message("user", (TextPart("hi"),)),
            Message("assistant", (), tool_calls=(ToolCall("call_abc123xyz", "f", "{}"),)),
            Message("tool", (TextPart("ok"),), tool_call_id="call_abc123xyz"),
        ],
        seed=3,
        user="u",
    )
    body = orjson.loads(codec.build_body(req, "mistral-small", PRESETS["mistral"], False))
    sent_id = body["messages"][1]["tool_calls"][0]["id"]
    assert len(sent_id) == 9 and sent_id.isalnum()
    assert body["messages"][2]["tool_call_id"] == sent_id
    assert body["random_seed"] == 3 and "seed" not in body and "user" not in body
    assert codec.short_tool_id("abcDEF123") == "abcDEF123"
