"""``truncation`` on the Responses API: the context window from the catalog, and the fit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from modelyard.catalog import Catalog, local_model_info
from modelyard.core.chat import ChatRequest, Message, TextPart, ToolCall, estimate_prompt_tokens
from modelyard.core.errors import InvalidRequest
from modelyard.routing import Deployment, Target
from modelyard.services.responses import context_window, fit_context


def _msg(role: str, chars: int, **fields: object) -> Message:
    return Message(role, (TextPart("x" * chars),), **fields)  # type: ignore[arg-type]


def _conversation() -> list[Message]:
    # 4 chars per token: instructions 100 tokens, then four turns of 100 tokens each.
    return [
        _msg("developer", 400),
        _msg("user", 400),
        Message("assistant", tool_calls=(ToolCall("c1", "f", "{}"),)),
        _msg("tool", 400, tool_call_id="c1"),
        _msg("assistant", 400),
        _msg("user", 400),
    ]


def test_what_fits_is_left_alone():
    messages = _conversation()
    assert fit_context(messages, 500, "disabled") == ()
    assert fit_context(messages, None, "auto") == ()
    assert len(messages) == 6


def test_auto_drops_the_oldest_turns_never_the_instructions_and_says_so():
    messages = _conversation()
    warnings = fit_context(messages, 300, "auto")
    # The user turn and the call go, and the call's result with them: no orphaned tool turn.
    assert [m.role for m in messages] == ["developer", "assistant", "user"]
    assert estimate_prompt_tokens(ChatRequest("m", messages)) <= 300
    assert len(warnings) == 1 and "oldest 3 messages" in warnings[0] and "300" in warnings[0]


def test_auto_keeps_the_last_message_and_refuses_when_even_it_does_not_fit():
    messages = [_msg("developer", 400), _msg("user", 4000)]
    with pytest.raises(InvalidRequest) as caught:
        fit_context(messages, 500, "auto")
    assert caught.value.param == "input" and caught.value.code == "context_length_exceeded"


def test_disabled_with_an_overflow_is_the_spec_400():
    messages = _conversation()
    with pytest.raises(InvalidRequest) as caught:
        fit_context(messages, 300, "disabled")
    error = caught.value
    assert (error.param, error.code) == ("input", "context_length_exceeded")
    assert "300" in error.message and "truncation" in error.message
    assert len(messages) == 6  # nothing dropped


def test_the_window_is_the_largest_among_the_targets_unless_one_is_unknown():
    catalog = Catalog(shipped=False)
    catalog.add("local", local_model_info("small", 2048))
    catalog.add("local", local_model_info("big", 8192))
    catalog.add("local", local_model_info("unknown", None))
    provider = SimpleNamespace(settings=SimpleNamespace(type="local"))
    deployments = {
        "both": Deployment("both", (Target("p", "big"), Target("p", "small"))),
        "unknown": Deployment("unknown", (Target("p", "small"), Target("p", "unknown"))),
    }
    gateway = SimpleNamespace(table=deployments, providers={"p": provider}, catalog=catalog)
    pipeline = SimpleNamespace(gateway=gateway)
    assert context_window(pipeline, "both") == 8192  # type: ignore[arg-type]
    assert context_window(pipeline, "unknown") is None  # type: ignore[arg-type]
    assert context_window(pipeline, "absent") is None  # type: ignore[arg-type]
