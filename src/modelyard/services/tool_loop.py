"""The tool loop: the gateway runs a response's MCP tools until the model answers.

``ToolLoop.run`` lists each server's tools (or reuses the ``mcp_list_tools`` item of the
response chain: a follow-up does not list again), offers them to the model as functions
(``<label>__<tool>``), and calls the model through the pipeline, one metered call per round
(ledger rows ``<request id>``, ``<request id>.1``... whose parent is the response id). Each MCP
call the model makes either runs (an ``mcp_call`` item with ``output``, or ``error`` and
``status: failed``: the model is shown the error and still answers) or, when the tool needs
approval, ends the response with an ``mcp_approval_request`` item; an ``mcp_approval_response``
in a later request's input (with ``previous_response_id``) runs the call, or tells the model it
was refused. ``max_tool_calls`` bounds the calls run (later ones are not offered, as the spec
says); ``mcp.max_iterations`` bounds the model calls, and reaching it ends the response
``incomplete`` with reason ``max_tool_calls``. A server that cannot be listed, or that lists no
usable tool, is an error the client sees (424 naming the label), never a tool-less answer.

The loop speaks core types and the Responses items; ``run`` is what the agents helper calls
with an agent's tools, and the Messages API's MCP connector can reuse it with its own rendering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final

from modelyard.agents.mcp_client import ListedTool, call_tool, list_tools
from modelyard.core import mcp as items
from modelyard.core.chat import (
    ChatRequest,
    ChatResult,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from modelyard.core.errors import InvalidRequest, ToolServerError
from modelyard.services.chat import Served
from modelyard.services.mcp_servers import ToolServer
from modelyard.services.pipeline import CLIENT_GONE, Answer, Caller, Pipeline

JSON = dict[str, Any]
# (event, item): list_started/list_done/list_failed, call_started/call_done, item (a whole item)
Progress = Callable[[str, JSON], Awaitable[None]]
# The items of one model answer in the caller's API (reasoning, message, the client's own
# function calls), given the answer and the names of the calls the loop runs itself.
Render = Callable[[ChatResult, frozenset[str]], list[JSON]]
REFUSED = "The user refused to run this tool call"
STEP_ENDPOINT = "mcp_call"  # the ledger's endpoint of a tool step
STEP_FAILED = 424  # a tool step that failed (the tool's or its server's failure)


async def _silent(_event: str, _item: JSON) -> None:
    return None


@dataclass(slots=True)
class LoopOutcome:
    """What the loop made: the output items in order, the last answer, usage summed."""

    output: list[JSON] = field(default_factory=list)
    answer: Answer | None = None
    usage: Usage = field(default_factory=Usage)
    status: str = "completed"
    incomplete: JSON | None = None
    model_calls: int = 0
    tool_calls: int = 0


@dataclass(slots=True)
class _Offered:
    server: ToolServer
    tool: ListedTool


@dataclass(slots=True)
class ToolLoop:
    """One response's loop. ``caller_for(n)`` is the caller of model call ``n`` (0-based)."""

    pipeline: Pipeline
    caller_for: Callable[[int], Caller]
    servers: list[ToolServer]
    render: Render
    max_iterations: int = 16
    max_tool_calls: int | None = None
    max_output_bytes: int = 1_000_000
    progress: Progress = _silent
    offered: dict[str, _Offered] = field(default_factory=dict)
    out: LoopOutcome = field(default_factory=LoopOutcome)
    _deployment: str = ""

    async def run(self, chat: ChatRequest, history: list[JSON], inputs: list[JSON]) -> LoopOutcome:
        """Answer ``chat`` (its messages already hold ``history`` and ``inputs``)."""
        self._deployment = chat.model
        specs = [await self._listing(server, history) for server in self.servers]
        tools = (*chat.tools, *(spec for found in specs for spec in found))
        messages = list(chat.messages)
        messages += await self._approvals(history, inputs)
        chat = replace(chat, stream=False, tools=tools, messages=messages)
        for n in range(self.max_iterations):
            if self._exhausted():
                chat = replace(
                    chat, tools=tuple(t for t in chat.tools if t.name not in self.offered)
                )
                chat.tool_choice = None if not chat.tools else chat.tool_choice
            answer = await self.pipeline.complete(self.caller_for(n), chat)
            self._count(answer)
            more = await self._round(answer.result, chat)
            if not more:
                return self.out
            if chat.tool_choice is not None:  # a forced call was made: the next round may answer
                chat = replace(chat, tool_choice=None)
        self.out.status = "incomplete"
        self.out.incomplete = {"reason": "max_tool_calls"}
        return self.out

    def _step_caller(self) -> Caller:
        """Tool step ``k`` of the response: ledger row ``<request id>.t<k>``, a child of the
        response like its model calls, counted against the same key's limits; the row holds
        the sizes of the arguments and of the result (``bytes_in``, ``bytes_out``)."""
        first = self.caller_for(0)
        rid = f"{first.request_id}.t{self.out.tool_calls + 1}"
        return Caller(first.principal, rid, STEP_ENDPOINT, first.parent_id, first.headers)

    def _exhausted(self) -> bool:
        return self.max_tool_calls is not None and self.out.tool_calls >= self.max_tool_calls

    def _count(self, answer: Answer) -> None:
        self.out.answer = answer
        self.out.model_calls += 1
        usage, got = self.out.usage, answer.result.usage
        if got is not None:
            usage.input_tokens += got.input_tokens
            usage.output_tokens += got.output_tokens
            usage.cached_input_tokens += got.cached_input_tokens
            usage.cache_write_tokens += got.cache_write_tokens
            usage.cache_write_1h_tokens += got.cache_write_1h_tokens
            usage.reasoning_tokens += got.reasoning_tokens

    async def _listing(self, server: ToolServer, history: list[JSON]) -> list[ToolSpec]:
        label = server.label
        cached = _cached_listing(history, label)
        if cached is not None:
            listed = [_listed(t) for t in cached]
        else:
            item = items.list_tools_item(label, [])
            self.out.output.append(item)
            await self.progress("list_started", item)
            try:
                listed = await list_tools(server.target)
            except ToolServerError as err:
                item["error"] = err.message
                await self.progress("list_failed", item)
                raise
            item["tools"] = [t.as_json() for t in listed]
            await self.progress("list_done", item)
        usable = [t for t in listed if server.request.allows(t.name, t.annotations)]
        if not usable:
            why = "matching allowed_tools" if listed else "at all"
            raise ToolServerError(
                f"MCP server {label!r} lists no tools {why}; a response cannot use it",
                param="tools",
                code="mcp_no_tools",
            )
        specs = []
        for tool in usable:
            name = items.function_name(label, tool.name)
            self.offered[name] = _Offered(server, tool)
            description = tool.description or f"the {tool.name} tool of MCP server {label}"
            specs.append(ToolSpec(name, description, tool.input_schema or dict(_EMPTY)))
        return specs

    async def _approvals(self, history: list[JSON], inputs: list[JSON]) -> list[Message]:
        """The calls answered by ``mcp_approval_response`` items: run, or refused."""
        messages: list[Message] = []
        asked = {i["id"]: i for i in history if i.get("type") == "mcp_approval_request"}
        for n, item in enumerate(inputs):
            if item.get("type") != "mcp_approval_response":
                continue
            request = asked.get(item["approval_request_id"])
            if request is None:
                raise InvalidRequest(
                    f"input[{n}].approval_request_id: no approval request "
                    f"{item['approval_request_id']!r} in the previous response's chain",
                    param=f"input[{n}].approval_request_id",
                )
            name = items.function_name(request["server_label"], request["name"])
            call = ToolCall(request["id"], name, request["arguments"])
            if item["approve"]:
                result = await self._execute(call, request["id"])
            else:
                reason = f": {item['reason']}" if item.get("reason") else ""
                result = f"{REFUSED}{reason}."
            messages += _exchange(call, result)
        return messages

    async def _round(self, result: ChatResult, chat: ChatRequest) -> bool:
        """One answer: its items out, its MCP calls run. True: call the model again."""
        if not result.choices:
            return False
        choice = result.choices[0]
        message = choice.message
        for item in self.render(result, frozenset(self.offered)):
            await self._emit(item)
        if choice.finish_reason == "length":
            self.out.status, self.out.incomplete = "incomplete", {"reason": "max_output_tokens"}
        ours = [c for c in message.tool_calls if c.name in self.offered]
        theirs = [c for c in message.tool_calls if c.name not in self.offered]
        if not ours:
            return False
        executed: list[ToolCall] = []
        results: list[str] = []
        waiting = bool(theirs)
        for call in ours:
            offered = self.offered[call.name]
            if self._exhausted():
                continue  # the spec: further calls are ignored
            if offered.server.request.needs_approval(offered.tool.name, offered.tool.annotations):
                await self._emit(items.approval_request_item(
                    offered.server.label, offered.tool.name, call.arguments))  # fmt: skip
                waiting = True
                continue
            executed.append(call)
            results.append(await self._execute(call, None))
        if executed:
            turn = Message(
                "assistant",
                message.content,
                tool_calls=tuple(executed),
                reasoning=message.reasoning,
                reasoning_signature=message.reasoning_signature,
            )
            chat.messages.append(turn)
            for call, text in zip(executed, results, strict=True):
                chat.messages.append(Message("tool", (TextPart(text),), tool_call_id=call.id))
        return not waiting

    async def _execute(self, call: ToolCall, approval_id: str | None) -> str:
        """Run one call; its ``mcp_call`` item goes out; returns what the model is shown."""
        offered = self.offered.get(call.name)
        if offered is None:  # approved, but no longer offered (allowed_tools changed)
            return "Error: this tool is not available in this request."
        label, name = offered.server.label, offered.tool.name
        item = items.call_item(label, name, call.arguments, approval_id)
        self.out.output.append(item)
        await self.progress("call_started", item)
        step = await self.pipeline.step(
            self._step_caller(), self._deployment, (name, call.id, label)
        )
        target = offered.server.target
        served = Served(self._deployment, f"mcp:{label}", name)
        try:
            outcome = await call_tool(target, name, call.arguments, self.max_output_bytes)
        except asyncio.CancelledError:
            # Cancelled mid-call (a background response cancelled, a client gone): the step
            # ran, so it is recorded (499) and its item ends ``incomplete``, not in_progress.
            item["status"] = "incomplete"
            await self.pipeline.end_step(step, served, CLIENT_GONE)
            raise
        status = 200 if outcome.ok else STEP_FAILED
        await self.pipeline.end_step(step, served, status, (outcome.bytes_in, outcome.bytes_out))
        self.out.tool_calls += 1
        items.finish_call(item, outcome.output, outcome.error)
        await self.progress("call_done", item)
        return items.call_messages_text(item)

    async def _emit(self, item: JSON) -> None:
        self.out.output.append(item)
        await self.progress("item", item)


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({"type": "object", "properties": {}})


def _exchange(call: ToolCall, result: str) -> list[Message]:
    return [
        Message("assistant", tool_calls=(call,)),
        Message("tool", (TextPart(result),), tool_call_id=call.id),
    ]


def _cached_listing(history: list[JSON], label: str) -> list[JSON] | None:
    """The tools of the chain's last successful listing of ``label``, if any."""
    for item in reversed(history):
        same = item.get("type") == "mcp_list_tools" and item.get("server_label") == label
        if same and not item.get("error"):
            return list(item.get("tools") or [])
    return None


def _listed(raw: JSON) -> ListedTool:
    return ListedTool(
        str(raw.get("name", "")),
        dict(raw.get("input_schema") or _EMPTY),
        raw.get("description"),
        raw.get("annotations"),
    )
