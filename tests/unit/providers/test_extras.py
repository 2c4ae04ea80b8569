"""The pass-through rule for unmodelled client fields, as each adapter states it."""

from __future__ import annotations

import pytest

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import InvalidRequest
from modelyard.providers.anthropic.params import EXTRAS as ANTHROPIC
from modelyard.providers.bedrock.params import EXTRAS as BEDROCK
from modelyard.providers.extras import passthrough_extras
from modelyard.providers.openai_compatible.codec import EXTRAS as OPENAI


def req(origin: str, **extra: object) -> ChatRequest:
    return ChatRequest(
        "m",
        [Message("user", (TextPart("x"),))],
        extra=dict(extra),
        extra_origin=origin,
        overrides={"top_k": 3} if "top_k" in extra else {},
    )


def test_openai_compatible_takes_only_its_own_dialects_extras() -> None:
    assert passthrough_extras(req("openai", foo=1), OPENAI, "o") == {"foo": 1}
    # An Anthropic client's fields would be rejected; only the operator's params go.
    assert passthrough_extras(req("anthropic", thinking={}, top_k=3), OPENAI, "o") == {"top_k": 3}


def test_anthropic_takes_any_dialects_extras_but_refuses_openai_only_features() -> None:
    sent = passthrough_extras(req("openai", top_k=5, store=True, logprobs=False), ANTHROPIC, "a")
    assert sent == {"top_k": 5}
    assert passthrough_extras(req("openai", service_tier="flex"), ANTHROPIC, "a") == {}
    with pytest.raises(InvalidRequest, match="logprobs: provider 'a' cannot honour"):
        passthrough_extras(req("openai", logprobs=True), ANTHROPIC, "a")


def test_bedrock_takes_only_converse_fields() -> None:
    fields = {"additionalModelRequestFields": {"top_k": 5}}
    assert passthrough_extras(req("anthropic", **fields), BEDROCK, "b") == fields
    with pytest.raises(InvalidRequest, match="additionalModelRequestFields"):
        passthrough_extras(req("anthropic", top_k=5), BEDROCK, "b")
