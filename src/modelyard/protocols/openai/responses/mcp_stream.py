"""The stream of a response whose MCP tools the gateway runs: the spec's MCP events.

After ``response.created`` and ``response.in_progress``, each step of the tool loop becomes its
events as it happens: a listing is ``response.output_item.added``,
``response.mcp_list_tools.in_progress``, then ``.completed`` or ``.failed`` and
``response.output_item.done``; a call is ``output_item.added``, ``response.mcp_call.in_progress``,
``response.mcp_call_arguments.delta``/``.done`` (the model's arguments, whole), then
``response.mcp_call.completed`` or ``.failed`` and ``output_item.done``. The model's answers
are encoded as in any response (``ResponseStream``), one whole delta per answer, since each
model call of the loop is a whole answer.
"""

from __future__ import annotations

from modelyard.core.chat import Usage
from modelyard.core.events import ReasoningDelta
from modelyard.protocols.openai.responses.encode import Envelope, response_json
from modelyard.protocols.openai.responses.request import JSON
from modelyard.protocols.openai.responses.stream import ResponseStream


class McpResponseStream(ResponseStream):
    """``ResponseStream`` plus the frames of the loop's steps (``step``) and whole items."""

    __slots__ = ()

    def __init__(self, env: Envelope) -> None:
        super().__init__(env)

    def step(self, event: str, item: JSON) -> bytes:
        """The frames of one step of the loop (``services.tool_loop.Progress``'s events)."""
        if event == "item":
            return self.item(item)
        at = {"item_id": item["id"]}
        if event in ("list_started", "call_started"):
            out = self._close()
            at["output_index"] = len(self.output)
            self.output.append(item)
            out += self._frame("response.output_item.added", {**at, "item": dict(item)})
            kind = "mcp_list_tools" if event == "list_started" else "mcp_call"
            out += self._frame(f"response.{kind}.in_progress", dict(at))
            if kind == "mcp_call":
                delta = {**at, "delta": item["arguments"]}
                out += self._frame("response.mcp_call_arguments.delta", delta)
                done = {**at, "arguments": item["arguments"]}
                out += self._frame("response.mcp_call_arguments.done", done)
            return out
        at["output_index"] = self._index(item)
        kind = "mcp_list_tools" if event.startswith("list") else "mcp_call"
        ok = event.endswith("done") and item.get("status") != "failed"
        out = self._frame(f"response.{kind}.{'completed' if ok else 'failed'}", dict(at))
        done = {"output_index": at["output_index"], "item": dict(item)}
        return out + self._frame("response.output_item.done", done)

    def item(self, item: JSON) -> bytes:
        """A whole item of a model answer: a message as its text events, others added and
        done at once."""
        if item["type"] == "message":
            text = "".join(p.get("text", "") for p in item.get("content") or [])
            return self._text(text) + self._close()
        if item["type"] == "reasoning":
            text = "".join(p.get("text", "") for p in item.get("summary") or [])
            sig = item.get("encrypted_content")
            return self.encode(ReasoningDelta(text, 0, sig)) + self._close()
        out = self._close()
        index = len(self.output)
        self.output.append(item)
        out += self._frame("response.output_item.added", {"output_index": index, "item": item})
        if item["type"] == "function_call":
            at = {"item_id": item["id"], "output_index": index}
            out += self._frame(
                "response.function_call_arguments.delta", {**at, "delta": item["arguments"]}
            )
            done = {**at, "name": item["name"], "arguments": item["arguments"]}
            out += self._frame("response.function_call_arguments.done", done)
        return out + self._frame("response.output_item.done", {"output_index": index, "item": item})

    def finish(self, status: str, usage: Usage, incomplete: JSON | None, env: Envelope) -> bytes:
        """Close the open item; ``final`` is the finished ``Response`` (``terminal`` sends it)."""
        out = self._close()
        self.status, self.usage = status, usage
        self.final = response_json(env, status, self.output, usage, incomplete=incomplete)
        return out

    def _index(self, item: JSON) -> int:
        for i, known in enumerate(self.output):
            if known is item or known.get("id") == item["id"]:
                return i
        return len(self.output) - 1
