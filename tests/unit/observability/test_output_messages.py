"""Captured answers as the GenAI conventions' output messages: one per choice, each naming why
it finished (``finish_reason``, which their schema requires), in the conventions' words
(``tool_call`` for our ``tool_calls``), whole and streamed, and ``error`` for a choice a failed
stream cut short; every message is checked against the schema's required fields."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import ANY

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart, ToolSpec
from modelyard.core.errors import ModelyardError
from modelyard.core.events import ToolCallDelta
from modelyard.observability.content import Captured
from modelyard.observability.tracing import TracingSettings, redactor
from modelyard.services.gateway import Gateway
from tests.fakes import FakeOpenAI
from tests.genai_messages import GENAI_FINISH_REASONS, output_messages
from tests.unit.observability.harness import UPSTREAM_KEY, Observed

CAPTURE = TracingSettings(capture_content=True, redact=redactor([]))
TOOL = ToolSpec("lookup", parameters={"type": "object", "properties": {"q": {"type": "string"}}})


@pytest.fixture
async def gateway(fake: FakeOpenAI) -> AsyncIterator[Gateway]:
    upstream = {"type": "openai", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    built = Gateway(
        settings_from_data(
            {
                "local": {"enabled": False},
                "providers": {"fake": upstream},
                "deployments": {
                    "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
                    "broken": {"targets": [{"provider": "fake", "model": "error-mid-stream"}]},
                },
            }
        ),
        None,
    )
    yield built
    await built.aclose()


def _ask(model: str = "chat", stream: bool = False, **fields: Any) -> ChatRequest:
    words = "tell me a rather long story about ships"
    return ChatRequest(model, [Message("user", (TextPart(words),))], stream=stream, **fields)


async def _captured(gateway: Gateway, request: ChatRequest) -> list[dict[str, Any]]:
    """The call's recorded output messages, checked against the conventions' schema."""
    observed = Observed(gateway, settings=CAPTURE)
    caller = observed.caller("m1")
    if request.stream:
        streaming = await observed.pipeline.stream(caller, request)
        with contextlib.suppress(ModelyardError):  # a broken stream: recorded as far as it went
            [event async for event in streaming.events]
    else:
        await observed.pipeline.complete(caller, request)
    (span,) = _attempts(observed.finished())
    return output_messages(dict(span.attributes or {})["gen_ai.output.messages"])


def _attempts(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith("chat ")]


@pytest.mark.parametrize("stream", [False, True])
async def test_each_choice_is_a_message_with_its_finish_reason(
    gateway: Gateway, stream: bool
) -> None:
    messages = await _captured(gateway, _ask(stream=stream, n=2, max_tokens=3))
    assert [m["finish_reason"] for m in messages] == ["length", "length"]
    for message in messages:
        assert message["role"] == "assistant"
        (part,) = message["parts"]
        assert part["type"] == "text" and len(part["content"].split()) == 3


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_that_ended_says_stop(gateway: Gateway, stream: bool) -> None:
    (message,) = await _captured(gateway, _ask(stream=stream))
    assert message["finish_reason"] == "stop"
    assert message["parts"][0]["content"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_call_finish_is_named_as_the_conventions_name_it(
    gateway: Gateway, stream: bool
) -> None:
    (message,) = await _captured(gateway, _ask(stream=stream, tools=(TOOL,)))
    assert message["finish_reason"] == "tool_call"  # ours is ``tool_calls``
    # The call itself, as a ``tool_call`` part (no empty text part beside it).
    (part,) = message["parts"]
    assert part["type"] == "tool_call" and part["name"] == "lookup" and part["id"]
    assert json.loads(part["arguments"]) == {"q": ANY}


async def test_a_stream_cut_short_ends_with_error(gateway: Gateway) -> None:
    (message,) = await _captured(gateway, _ask("broken", stream=True))
    assert message["finish_reason"] == "error"
    assert message["parts"][0]["content"]  # what came before the break is kept


def test_every_reason_of_ours_maps_to_one_of_the_conventions() -> None:
    captured = Captured()
    for index, reason in enumerate(("stop", "length", "tool_calls", "content_filter")):
        captured.finished(index, reason)
    messages = output_messages(captured.messages(False, str))
    assert {m["finish_reason"] for m in messages} <= set(GENAI_FINISH_REASONS)
    assert [m["finish_reason"] for m in messages] == [
        "stop",
        "length",
        "tool_call",
        "content_filter",
    ]


def test_choices_are_recorded_in_index_order_with_refusals_apart() -> None:
    captured = Captured()
    captured.text(1, "b")
    captured.refusal(0, "no")
    captured.finished(1, "stop")
    messages = output_messages(captured.messages(True, str))
    assert messages == [
        {
            "role": "assistant",
            "parts": [{"type": "refusal", "content": "no"}],
            "finish_reason": "error",
        },
        {"role": "assistant", "parts": [{"type": "text", "content": "b"}], "finish_reason": "stop"},
    ]


def test_a_streamed_tool_call_is_put_together_from_its_pieces() -> None:
    captured = Captured()
    captured.tool_call(ToolCallDelta(1, '{"q": ', id="c2", name="other"))
    captured.tool_call(ToolCallDelta(0, '{"city": "Pa', id="c1", name="weather"))
    captured.tool_call(ToolCallDelta(0, 'ris secret-9"}'))
    captured.tool_call(ToolCallDelta(1, "1}"))
    captured.finished(0, "tool_calls")
    (message,) = output_messages(captured.messages(False, redactor([r"secret-\d"])))
    assert message == {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "c1",
                "name": "weather",
                "arguments": '{"city": "Paris [redacted]"}',
            },
            {"type": "tool_call", "id": "c2", "name": "other", "arguments": '{"q": 1}'},
        ],
        "finish_reason": "tool_call",
    }
