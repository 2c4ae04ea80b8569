"""The tool loop's bounds and decisions, on a pipeline that always wants the tool: the hard
iteration cap ends ``incomplete``, ``max_tool_calls`` stops offering the tools, approval stops
the response, an empty tool list is an error; and the ``mcp`` tool entries' decoding."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from modelyard.agents.mcp_client import ListedTool, ServerTarget, ToolOutcome
from modelyard.config.mcp import McpConfig, McpServerConfig
from modelyard.core.chat import ChatRequest, ChatResult, Choice, Message, TextPart, ToolCall
from modelyard.core.errors import InvalidRequest, PermissionDenied, ToolServerError
from modelyard.core.mcp import McpToolRequest
from modelyard.protocols.openai.responses.mcp import decode_mcp_tools
from modelyard.services import tool_loop
from modelyard.services.chat import Served
from modelyard.services.mcp_servers import ToolServer, resolve_servers
from modelyard.services.pipeline import Answer, Caller, Step
from modelyard.tenancy.keys import Principal

ADD = ListedTool("add", {"type": "object", "properties": {"a": {"type": "integer"}}})


@dataclass
class _Pipeline:
    """Calls the tool whenever it is offered, else answers."""

    calls: list[ChatRequest] = field(default_factory=list)
    steps: list[tuple[str, int]] = field(default_factory=list)
    sizes: list[tuple[int, int] | None] = field(default_factory=list)

    async def complete(self, caller: Caller, chat: ChatRequest) -> Answer:
        self.calls.append(chat)
        if any(t.name == "calc__add" for t in chat.tools):
            message = Message(
                "assistant", tool_calls=(ToolCall(f"c{len(self.calls)}", "calc__add", '{"a": 1}'),)
            )
            result = ChatResult([Choice(0, message, "tool_calls")], None)
        else:
            result = ChatResult(
                [Choice(0, Message("assistant", (TextPart("done"),)), "stop")], None
            )
        return Answer(result, Served("d", "p", "m"), None)

    async def step(self, caller: Caller, deployment: str, tool: tuple[str, str, str]) -> Step:
        return Step(None)

    async def end_step(
        self, step: Step, served: Served, status: int, sizes: tuple[int, int] | None = None
    ) -> None:
        self.steps.append((served.model, status))
        self.sizes.append(sizes)


def _loop(monkeypatch: pytest.MonkeyPatch, request: McpToolRequest, tools: list[ListedTool],
          **kw: Any) -> tuple[tool_loop.ToolLoop, _Pipeline]:  # fmt: skip
    async def listed(target: ServerTarget) -> list[ListedTool]:
        return tools

    async def called(
        target: ServerTarget, name: str, arguments: str, max_bytes: int
    ) -> ToolOutcome:
        return ToolOutcome("2", None, 0.001, len(arguments) + 100, 1)

    monkeypatch.setattr(tool_loop, "list_tools", listed)
    monkeypatch.setattr(tool_loop, "call_tool", called)
    pipeline = _Pipeline()
    caller = Caller(Principal("k"), "req", "/v1/responses", "resp_1")
    server = ToolServer(request, ServerTarget("calc", "http://x.example/mcp"))

    def render(result: ChatResult, ours: frozenset[str]) -> list[dict[str, Any]]:
        text = result.choices[0].message.text()
        return [{"type": "message", "id": "m", "content": [{"text": text}]}] if text else []

    loop = tool_loop.ToolLoop(pipeline, lambda n: caller, [server], render, **kw)  # type: ignore[arg-type]
    return loop, pipeline


def _run(loop: tool_loop.ToolLoop, history: list[Any] | None = None) -> tool_loop.LoopOutcome:
    chat = ChatRequest(model="d", messages=[Message("user", (TextPart("hi"),))])
    return asyncio.run(loop.run(chat, history or [], []))


def test_the_hard_cap_ends_incomplete(monkeypatch: pytest.MonkeyPatch):
    loop, pipeline = _loop(
        monkeypatch, McpToolRequest("calc", approval="never"), [ADD], max_iterations=3
    )
    out = _run(loop)
    assert out.status == "incomplete" and out.incomplete == {"reason": "max_tool_calls"}
    assert out.model_calls == 3 and out.tool_calls == 3 and len(pipeline.calls) == 3
    assert pipeline.steps == [("add", 200)] * 3
    # Each step is recorded with the outcome's sizes (the fake's: arguments + 100, 1).
    assert pipeline.sizes == [(len('{"a": 1}') + 100, 1)] * 3


def test_max_tool_calls_stops_offering_the_tools(monkeypatch: pytest.MonkeyPatch):
    loop, pipeline = _loop(
        monkeypatch, McpToolRequest("calc", approval="never"), [ADD], max_tool_calls=1
    )
    out = _run(loop)
    assert out.status == "completed" and out.tool_calls == 1 and out.model_calls == 2
    assert [i["type"] for i in out.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert pipeline.calls[-1].tools == ()


def test_approval_stops_the_response_before_the_call(monkeypatch: pytest.MonkeyPatch):
    loop, pipeline = _loop(monkeypatch, McpToolRequest("calc"), [ADD])
    out = _run(loop)
    assert [i["type"] for i in out.output] == ["mcp_list_tools", "mcp_approval_request"]
    assert out.tool_calls == 0 and pipeline.steps == []


def test_a_cached_listing_is_not_listed_again(monkeypatch: pytest.MonkeyPatch):
    loop, _ = _loop(monkeypatch, McpToolRequest("calc", approval="never"), [], max_tool_calls=1)
    history = [
        {
            "type": "mcp_list_tools",
            "id": "l",
            "server_label": "calc",
            "tools": [ADD.as_json()],
            "error": None,
        }
    ]
    out = _run(loop, history)
    assert [i["type"] for i in out.output] == ["mcp_call", "message"]


def test_no_usable_tool_is_an_error(monkeypatch: pytest.MonkeyPatch):
    decoded = decode_mcp_tools([{"type": "mcp", "server_label": "calc", "allowed_tools": ["sub"]}])
    loop, pipeline = _loop(monkeypatch, decoded[0], [ADD])
    with pytest.raises(ToolServerError) as caught:
        _run(loop)
    assert "'calc'" in caught.value.message and "allowed_tools" in caught.value.message
    assert pipeline.calls == []


def test_approval_forms_and_filters():
    (tool,) = decode_mcp_tools([{
        "type": "mcp", "server_label": "calc",
        "require_approval": {"never": {"tool_names": ["add"]}},
        "allowed_tools": {"read_only": True},
    }])  # fmt: skip
    assert not tool.needs_approval("add", None) and tool.needs_approval("fail", None)
    assert tool.allows("look", {"readOnlyHint": True}) and not tool.allows("add", None)


@pytest.mark.parametrize(
    ("entry", "param"),
    [
        ({"server_label": "a b"}, "tools[0].server_label"),
        ({"server_label": "c", "connector_id": "connector_gmail"}, "tools[0].connector_id"),
        ({"server_label": "c", "require_approval": "sometimes"}, "tools[0].require_approval"),
        ({"server_label": "c", "headers": {"x": "a\nb"}}, "tools[0].headers.x"),
        ({"server_label": "c", "bogus": 1}, "tools[0].bogus"),
    ],
)
def test_bad_entries_are_refused_naming_the_field(entry: dict[str, Any], param: str):
    with pytest.raises(InvalidRequest) as caught:
        decode_mcp_tools([{"type": "mcp", **entry}])
    assert caught.value.param == param


def test_policy_resolution():
    configured = {"calc": McpServerConfig(url="http://127.0.0.1:1/mcp", headers={"A": "s3"})}
    own = McpToolRequest("calc", headers=(("A", "client"),))
    (found,) = resolve_servers(configured, McpConfig(), None, (own,))
    assert found.target.headers == {"A": "s3"} and not found.target.checked  # operator's wins
    url = McpToolRequest("web", url="https://tools.example/mcp")
    with pytest.raises(InvalidRequest, match="allow_request_urls"):
        resolve_servers(configured, McpConfig(), None, (url,))
    opened = McpConfig(allow_request_urls=True, projects={"p1": ["calc"]})
    assert resolve_servers(configured, opened, None, (url,))[0].target.checked
    with pytest.raises(PermissionDenied):
        resolve_servers(configured, opened, "p1", (url,))
    assert resolve_servers(configured, opened, "p1", (own,))
    prefixed = McpConfig(allow_request_urls=True, projects={"p1": ["https://tools.example/"]})
    assert resolve_servers(configured, prefixed, "p1", (url,))
    assert "s3" not in repr(found.target)
