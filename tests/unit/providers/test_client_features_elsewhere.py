"""A Messages client's system blocks, cache breakpoints and server tools at upstreams of the other
APIs: blocks joined with a blank line (OpenAI, Gemini), kept with ``cachePoint`` blocks
(Bedrock Converse), server tools refused naming the tool."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.core.chat import CacheMark, ChatRequest, DocumentPart, Message, TextPart, ToolSpec
from modelyard.core.errors import InvalidRequest, UnsupportedCapability
from modelyard.providers.bedrock import codec as bedrock
from modelyard.providers.gemini import codec as gemini
from modelyard.providers.openai_compatible import codec as openai
from modelyard.providers.openai_compatible.presets import PRESETS

SYSTEM = Message("system", (TextPart("one"), TextPart("two", CacheMark())))
LATE = Message("system", (TextPart("late"),))
USER = Message("user", (TextPart("hi", CacheMark()),))
SEARCH = ToolSpec("web_search", native={"type": "web_search_20250305", "name": "web_search"})


def request(*messages: Message, **kw: Any) -> ChatRequest:
    r = ChatRequest("d", list(messages), **kw)
    r.extra_origin = "anthropic"
    return r


def openai_body(r: ChatRequest) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(openai.build_body(r, "gpt-x", PRESETS["openai"], False))
    return out


def test_openai_gets_joined_system_text_and_system_messages_in_place():
    out = openai_body(request(SYSTEM, USER, Message("assistant", (TextPart("a"),)), LATE))
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "system"]
    assert out["messages"][0]["content"] == "one\n\ntwo"
    assert out["messages"][1]["content"] == "hi"  # user text parts still run together


def test_gemini_joins_system_blocks_and_late_system_messages():
    out = orjson.loads(gemini.build_body(request(SYSTEM, USER, LATE), "gemini-2.5-flash"))
    assert out["systemInstruction"] == {"parts": [{"text": "one\n\ntwo"}, {"text": "late"}]}


def test_bedrock_keeps_blocks_with_cache_points():
    tool = ToolSpec("f", None, {"type": "object"}, cache=CacheMark())
    out = bedrock.build_request(
        request(SYSTEM, USER, tools=(tool,)), "anthropic.claude-x", bedrock.BuildOptions("br")
    ).body
    point = {"cachePoint": {"type": "default"}}
    assert out["system"] == [{"text": "one"}, {"text": "two"}, point]
    assert out["messages"][0]["content"] == [{"text": "hi"}, point]
    assert out["toolConfig"]["tools"][1] == point


@pytest.mark.parametrize(
    "build",
    [
        openai_body,
        lambda r: gemini.build_body(r, "gemini-2.5-flash"),
        lambda r: bedrock.build_request(r, "anthropic.claude-x", bedrock.BuildOptions("br")),
    ],
)
def test_server_tools_are_refused_naming_the_tool(build):
    with pytest.raises(InvalidRequest) as info:
        build(request(USER, tools=(SEARCH,)))
    assert info.value.param == "tools[0].type"
    assert "'web_search'" in str(info.value) and "web_search_20250305" in str(info.value)


def test_a_messages_clients_own_fields_at_gemini_are_translated_dropped_or_refused():
    r = request(
        USER,
        extra={
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "context_management": {"edits": []},
            "output_config": {"effort": "high"},
            "cache_control": {"type": "ephemeral"},
            "top_k": 5,
        },
    )
    out = orjson.loads(gemini.build_body(r, "gemini-2.5-flash"))
    config = out["generationConfig"]
    assert config == {
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
        "topK": 5,
    }
    r.extra = {"thinking": {"type": "adaptive"}}
    assert "generationConfig" not in orjson.loads(gemini.build_body(r, "gemini-2.5-flash"))
    r.extra = {"mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}]}
    with pytest.raises(InvalidRequest) as info:
        gemini.build_body(r, "gemini-2.5-flash")
    assert info.value.param == "mcp_servers"


PDF_DATA = "JVBERi0xLjQK"  # "%PDF-1.4\n"
PDF_DOC = DocumentPart("application/pdf", data=PDF_DATA, title="Report (Q3)")
TEXT_DOC = DocumentPart("text/plain", text="the body", title="Notes")
URL_DOC = DocumentPart("application/pdf", url="https://example.com/a.pdf")


def with_docs(*docs: DocumentPart) -> ChatRequest:
    return request(Message("user", (TextPart("read"), *docs)))


def test_documents_at_openai_are_file_parts_and_text():
    parts = openai_body(with_docs(PDF_DOC, TEXT_DOC))["messages"][0]["content"]
    assert parts[1] == {
        "type": "file",
        "file": {"filename": "Report (Q3)", "file_data": f"data:application/pdf;base64,{PDF_DATA}"},
    }
    assert parts[2] == {"type": "text", "text": "Notes\n\nthe body"}


def test_documents_at_gemini_are_inline_data_and_text():
    out = orjson.loads(gemini.build_body(with_docs(PDF_DOC, TEXT_DOC), "gemini-2.5-flash"))
    parts = out["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "application/pdf", "data": PDF_DATA}}
    assert parts[2] == {"text": "Notes\n\nthe body"}


def test_documents_at_bedrock_are_document_blocks():
    out = bedrock.build_request(
        with_docs(PDF_DOC, TEXT_DOC), "anthropic.claude-x", bedrock.BuildOptions("br")
    ).body
    blocks = out["messages"][0]["content"]
    assert blocks[1] == {
        "document": {"format": "pdf", "name": "Report (Q3)", "source": {"bytes": PDF_DATA}}
    }
    assert blocks[2]["document"]["format"] == "txt"
    assert blocks[2]["document"]["source"] == {"bytes": "dGhlIGJvZHk="}


@pytest.mark.parametrize(
    "build",
    [
        openai_body,
        lambda r: gemini.build_body(r, "gemini-2.5-flash"),
        lambda r: bedrock.build_request(r, "anthropic.claude-x", bedrock.BuildOptions("br")),
    ],
)
def test_a_document_url_is_refused_naming_the_part(build):
    with pytest.raises(UnsupportedCapability) as info:
        build(with_docs(URL_DOC))
    assert info.value.param == "messages[0].content[1]"
    assert "document URLs" in str(info.value)


def test_a_messages_clients_own_fields_at_bedrock_go_to_model_fields_or_are_dropped():
    r = request(
        USER,
        extra={
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "top_k": 5,
            "context_management": {"edits": []},
            "output_config": {"effort": "high"},
            "cache_control": {"type": "ephemeral"},
        },
    )
    out = bedrock.build_request(r, "anthropic.claude-x", bedrock.BuildOptions("br")).body
    assert out["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "top_k": 5,
    }
    assert not {"context_management", "output_config", "cache_control"} & out.keys()
