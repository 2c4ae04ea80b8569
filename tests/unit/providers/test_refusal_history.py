"""A refusal in a client's history (an assistant turn that declined): OpenAI and Azure take
it as the message's ``refusal``; every other upstream, whose dialect has none (or that rejects
fields it does not know, as Groq and Mistral do), reads it as the turn's text."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.protocols.openai.decode import decode_chat
from modelyard.providers.anthropic.messages import convert_messages
from modelyard.providers.bedrock import codec as bedrock
from modelyard.providers.gemini import codec as gemini
from modelyard.providers.openai_compatible import codec as openai
from modelyard.providers.openai_compatible.presets import PRESETS

REFUSAL = "I can't help with that."
HISTORY = [
    {"role": "user", "content": "do the bad thing"},
    {"role": "assistant", "content": None, "refusal": REFUSAL},
    {"role": "user", "content": "why not?"},
]


def _request() -> ChatRequest:
    return decode_chat({"model": "d", "messages": HISTORY})


def test_the_decoder_keeps_a_refusal() -> None:
    message = _request().messages[1]
    assert message.refusal == REFUSAL and message.content == ()
    # An SDK's own message sent back (``refusal: null``), and other roles: no refusal.
    plain = {"role": "assistant", "content": "Hi", "refusal": None}
    user = {"role": "user", "content": "x", "refusal": "ignored"}
    decoded = decode_chat({"model": "d", "messages": [plain, user]}).messages
    assert [m.refusal for m in decoded] == [None, None]


@pytest.mark.parametrize("preset", ["openai", "azure_openai"])
def test_openai_gets_the_refusal_field(preset: str) -> None:
    body = orjson.loads(openai.build_body(_request(), "gpt-x", PRESETS[preset], False))
    assert body["messages"][1] == {"role": "assistant", "content": None, "refusal": REFUSAL}


@pytest.mark.parametrize("preset", ["openai_compatible", "groq", "mistral", "vllm"])
def test_other_openai_compatible_vendors_get_it_as_text(preset: str) -> None:
    body = orjson.loads(openai.build_body(_request(), "m", PRESETS[preset], False))
    assert body["messages"][1] == {"role": "assistant", "content": REFUSAL}


def test_anthropic_gets_it_as_the_turns_text() -> None:
    _system, turns = convert_messages(_request().messages, "anthropic")
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [{"type": "text", "text": REFUSAL}]


def test_gemini_and_bedrock_get_it_as_the_turns_text() -> None:
    out: dict[str, Any] = orjson.loads(gemini.build_body(_request(), "gemini-2.5-flash"))
    assert out["contents"][1] == {"role": "model", "parts": [{"text": REFUSAL}]}
    options = bedrock.BuildOptions("br")
    converse = bedrock.build_request(_request(), "anthropic.claude-x", options).body
    assert converse["messages"][1] == {"role": "assistant", "content": [{"text": REFUSAL}]}


def test_a_refusal_after_content_follows_it() -> None:
    both = Message("assistant", (TextPart("Partly. "),), refusal="No more.")
    assert both.refusal_as_text().content == (TextPart("Partly. "), TextPart("No more."))
    assert both.refusal_as_text().refusal is None
    plain = Message("assistant", (TextPart("x"),))
    assert plain.refusal_as_text() is plain
