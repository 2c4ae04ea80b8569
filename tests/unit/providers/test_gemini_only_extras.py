"""Fields of Gemini-dialect clients: sent to Gemini upstreams, refused or ignored elsewhere."""

from __future__ import annotations

import orjson
import pytest

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import InvalidRequest
from modelyard.providers.anthropic.params import EXTRAS as ANTHROPIC
from modelyard.providers.bedrock.params import EXTRAS as BEDROCK
from modelyard.providers.extras import ExtrasPolicy, passthrough_extras
from modelyard.providers.gemini.codec import build_body
from modelyard.providers.openai_compatible.codec import EXTRAS as OPENAI

SAFETY = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]


def req(**extra: object) -> ChatRequest:
    return ChatRequest(
        "m", [Message("user", (TextPart("x"),))], extra=dict(extra), extra_origin="gemini"
    )


def test_gemini_upstream_receives_cache_tools_and_safety_settings() -> None:
    request = req(
        cached_content="cachedContents/c1",
        gemini_tools=[{"googleSearch": {}}],
        safety_settings=SAFETY,
        top_k=4,
    )
    body = orjson.loads(build_body(request, "gemini-2.5-flash"))
    assert body["cachedContent"] == "cachedContents/c1"
    assert body["tools"] == [{"googleSearch": {}}]
    assert body["safetySettings"] == SAFETY
    assert body["generationConfig"] == {"topK": 4}


@pytest.mark.parametrize("policy", [OPENAI, ANTHROPIC, BEDROCK], ids=lambda p: p.api)
@pytest.mark.parametrize("field", ["cached_content", "gemini_tools"])
def test_other_upstreams_refuse_gemini_only_fields_by_name(policy: ExtrasPolicy, field: str):
    with pytest.raises(InvalidRequest) as caught:
        passthrough_extras(req(**{field: "x"}), policy, "p")
    assert caught.value.param == field


@pytest.mark.parametrize("policy", [OPENAI, ANTHROPIC, BEDROCK], ids=lambda p: p.api)
def test_safety_settings_are_left_to_the_other_vendors_own_systems(policy: ExtrasPolicy):
    assert passthrough_extras(req(safety_settings=SAFETY), policy, "p") == {}
