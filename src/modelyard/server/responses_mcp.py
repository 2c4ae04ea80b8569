"""``POST /v1/responses`` with ``mcp`` tools: the gateway runs the tool loop, then answers.

The loop (``services/tool_loop.py``) makes one metered pipeline call per model round; this
module only resolves the request's servers, renders the answers' items, and writes the body or
the event stream (``McpResponseStream``). A server that may not be used is a 400/403 before
anything runs; one that cannot be listed is a 424 naming its label (streamed:
``response.mcp_list_tools.failed`` then ``response.failed``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from modelyard.core.chat import ChatResult
from modelyard.core.errors import ContentBlocked, InternalError, ModelyardError
from modelyard.protocols.openai.responses.encode import (
    Envelope,
    dump,
    filtered_json,
    response_json,
    result_output,
)
from modelyard.protocols.openai.responses.mcp_stream import McpResponseStream
from modelyard.protocols.openai.responses.request import JSON, ResponsesRequest
from modelyard.server.background_routes import Saving, ended_by
from modelyard.server.chat_route import SSE_HEADERS, served_headers
from modelyard.server.http import json_response
from modelyard.server.openai_routes import DIALECT
from modelyard.services.background import LiveRun, Work
from modelyard.services.mcp_servers import resolve_servers
from modelyard.services.pipeline import Caller
from modelyard.services.responses import PATH
from modelyard.services.root import Configured
from modelyard.services.tool_loop import LoopOutcome, ToolLoop

log = logging.getLogger("modelyard.server")
# As in ``responses_routes``: what an output guard blocks makes the response ``incomplete``.
OUTPUT_PHASES = ("output", "tool_input")


class McpRun:
    """One response's tool loop, as the route runs it."""

    def __init__(
        self, current: Configured, caller: Caller, req: ResponsesRequest, env: Envelope
    ) -> None:
        """``caller``: the response's first model call (its id the request id, its parent the
        response id)."""
        settings = current.settings
        principal, rid = caller.principal, caller.request_id
        servers = resolve_servers(settings.mcp_servers, settings.mcp, principal.project_id, req.mcp)

        def caller_for(n: int) -> Caller:
            # Each model round is a ledger row of its own, all children of the response.
            if n == 0:
                return caller
            return Caller(principal, f"{rid}.{n}", PATH, env.id, caller.headers)

        def render(result: ChatResult, ours: frozenset[str]) -> list[JSON]:
            output, _reason = result_output(result, req)
            return [i for i in output if not (i["type"] == "function_call" and i["name"] in ours)]

        self.req, self.env, self.rid = req, env, rid
        self.loop = ToolLoop(
            current.pipeline,
            caller_for,
            servers,
            render,
            max_iterations=settings.mcp.max_iterations,
            max_tool_calls=req.max_tool_calls,
            max_output_bytes=settings.mcp.max_output_bytes,
        )

    async def run(self, history: list[JSON]) -> LoopOutcome:
        return await self.loop.run(self.req.chat, history, self.req.items)

    def body(self, outcome: LoopOutcome) -> JSON:
        return response_json(
            self.env, outcome.status, outcome.output, outcome.usage, incomplete=outcome.incomplete
        )

    def headers(self, outcome: LoopOutcome) -> dict[str, str]:
        answer = outcome.answer
        if answer is None:
            return dict(DIALECT.id_headers(self.rid))
        return served_headers(DIALECT, answer.served, self.rid, answer.ticket)


async def mcp_json(run: McpRun, saver: Saving, history: list[JSON]) -> Response:
    """The whole response as one body; an answer or tool call an output guard blocked ends it
    ``incomplete`` (``content_filter``), with the steps made before."""
    try:
        outcome = await run.run(history)
    except ContentBlocked as blocked:
        if blocked.phase not in OUTPUT_PHASES:
            raise
        outcome = run.loop.out
        outcome.status, outcome.incomplete = "incomplete", filtered_json(blocked)
    body = run.body(outcome)
    await saver.save(body, outcome.output)
    return json_response(dump(body), headers=run.headers(outcome))


def mcp_stream(run: McpRun, saver: Saving, history: list[JSON]) -> Response:
    """The response as the spec's event stream, each loop step as it happens."""
    headers = {**DIALECT.id_headers(run.rid), **SSE_HEADERS}
    return StreamingResponse(
        _frames(run, saver, history), headers=headers, media_type="text/event-stream"
    )


async def _frames(run: McpRun, saver: Saving, history: list[JSON]) -> AsyncIterator[bytes]:
    writer = McpResponseStream(run.env)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def progress(event: str, item: JSON) -> None:
        queue.put_nowait(writer.step(event, item))

    async def loop() -> LoopOutcome:
        try:
            return await run.run(history)
        finally:
            queue.put_nowait(None)

    run.loop.progress = progress
    yield writer.start()
    task = asyncio.ensure_future(loop())
    try:
        while (frame := await queue.get()) is not None:
            if frame:
                yield frame
        outcome = task.result()
        closing = writer.finish(outcome.status, outcome.usage, outcome.incomplete, run.env)
    except ModelyardError as err:
        closing = _closing(writer, run, err)
    except Exception:  # a bug after the first byte must still end the stream, not hang it
        log.exception("request %s: response stream failed", run.rid)
        closing = writer.failed(InternalError("internal error while streaming"))
    finally:
        if not task.done():  # the client left: stop the loop
            task.cancel()
    yield closing
    try:
        await saver.save(writer.final, writer.output)
    except ModelyardError as err:
        log.error("request %s: response not stored: %s", run.rid, err.message)
        writer.failed(err)
    yield writer.terminal()


def mcp_background(run: McpRun, saver: Saving, history: list[JSON]) -> Work:
    """The work of a background response with MCP tools: the loop, its steps added to the
    run's event log as they happen (the same events as ``mcp_stream``'s). Cancelling the run
    cancels the loop where it is: no further model round or tool call starts."""

    async def work(live: LiveRun) -> JSON:
        writer = McpResponseStream(run.env)

        async def progress(event: str, item: JSON) -> None:
            live.add(writer.step(event, item))

        run.loop.progress = progress
        live.add(writer.start())
        try:
            outcome = await run.run(history)
            live.add(writer.finish(outcome.status, outcome.usage, outcome.incomplete, run.env))
        except ModelyardError as err:
            live.add(_closing(writer, run, err))
        except asyncio.CancelledError as exc:
            writer.usage = run.loop.out.usage
            return await ended_by(live, writer, saver, exc)
        await saver.save(writer.final, writer.output)
        live.add(writer.terminal())
        return writer.final

    return work


def _closing(writer: McpResponseStream, run: McpRun, err: ModelyardError) -> bytes:
    """The frames that end a loop that raised: an output guard's block makes the response
    ``incomplete``, anything else ``failed``; usage is what the rounds made."""
    writer.usage = run.loop.out.usage
    if isinstance(err, ContentBlocked) and err.phase in OUTPUT_PHASES:
        return writer.blocked(err)
    return writer.failed(err)
