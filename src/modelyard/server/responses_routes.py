"""Routes of the Responses API: thin — decode, prepare, call the pipeline, encode.

A response runs on the same pipeline as a chat completion (auth, limits, failover, ledger).
A failure before the first upstream event is a real 4xx/5xx in OpenAI's error shape; after
it, the stream ends with ``response.failed``. An output guard's block is neither: the response
is ``incomplete`` with ``incomplete_details.reason: content_filter`` (JSON body or the stream's
``response.incomplete``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelyard.core.chat import estimate_prompt_tokens
from modelyard.core.errors import ContentBlocked, InternalError, ModelyardError
from modelyard.protocols.openai.responses.decode import (
    decode_response_request,
    instruction_messages,
)
from modelyard.protocols.openai.responses.encode import (
    Envelope,
    blocked_json,
    dump,
    result_json,
)
from modelyard.protocols.openai.responses.items import to_messages
from modelyard.protocols.openai.responses.request import JSON, ResponsesRequest
from modelyard.protocols.openai.responses.stream import ResponseStream
from modelyard.server.background_routes import Job, cancel, job_work, start_background
from modelyard.server.chat_route import (
    SSE_HEADERS,
    SSEResponse,
    authenticate,
    error_response,
    served_raw,
    state_of,
)
from modelyard.server.http import exchange_of, joined, json_response, own_headers, read_json
from modelyard.server.openai_routes import DIALECT
from modelyard.server.responses_mcp import McpRun, mcp_background, mcp_json, mcp_stream
from modelyard.services.background import Work
from modelyard.services.pipeline import INTERNAL, Caller, Streaming
from modelyard.services.response_state import ResponseState, owner_of
from modelyard.services.responses import PATH, context_window, fit_context, hosted_warnings
from modelyard.services.root import Root

log = logging.getLogger("modelyard.server")
HOSTED_HEADER = "x-modelyard-hosted-tools-omitted"
AGENT_HEADER = "x-modelyard-agent"  # name@version of the agent a response ran
# An answer (or its tool calls) an output guard blocked is an ``incomplete`` response with
# ``incomplete_details.reason: content_filter``, the spec's reason for it; a blocked prompt is
# a 400 ``content_filter`` as on chat, since no response was made (docs/guardrails.md).
OUTPUT_PHASES = ("output", "tool_input")


async def create_response(request: Request) -> Response:
    root = state_of(request)
    exchange = exchange_of(request)
    rid = exchange.rid
    current = root.current
    try:
        principal = await authenticate(root, request)
        body, agent = await root.agents.apply(await read_json(request, current.max_body_bytes))
        req = decode_response_request(body)
        exchange.model = req.chat.model
        env = Envelope(req, warnings=hosted_warnings(current.pipeline, req.chat.model, req.hosted))
        saver = Saver(ResponseState(root.store, root.response_writes), owner_of(principal), req)
        await saver.resend_history()
        window = context_window(current.pipeline, req.chat.model)
        env.warnings += fit_context(req.chat.messages, window, req.truncation)
        # The response id labels the ledger row of each upstream call it makes.
        caller = Caller(principal, rid, PATH, env.id, request.headers.get)
        extra = {HOSTED_HEADER: ",".join(req.hosted)} if req.hosted else {}
        if agent is not None:
            extra[AGENT_HEADER] = agent.label
            req.echo["agent"] = agent.response_field
        if req.background:
            current.models.get(req.chat.model)  # an unknown model: a 404 now, not a failed run
            if req.mcp:  # the tool loop, in the run's task (server/responses_mcp.py)
                work = mcp_background(McpRun(current, caller, req, env), saver, saver.history)
            else:
                work = job_work(Job(current.pipeline, caller, env, saver, stream_events))
            return await _background(root, env, (rid, saver.owner), work, extra)
        if req.mcp:  # tools the gateway runs: the tool loop (server/responses_mcp.py)
            return await _with_mcp_tools(McpRun(current, caller, req, env), saver, extra)
        if req.chat.stream:
            streaming = await current.pipeline.stream(caller, req.chat)
            headers = served_raw(DIALECT, streaming.served, rid, streaming.ticket)
            headers += own_headers(extra)
            events = _events(ResponseStream(env), saver, streaming, rid)
            return SSEResponse(events, streaming, exchange, headers)
        try:
            answer = await current.pipeline.complete(caller, req.chat)
        except ContentBlocked as blocked:
            if blocked.phase not in OUTPUT_PHASES:
                raise  # the prompt: a 400, as on chat (no response was made)
            body = blocked_json(env, blocked)
            await saver.save(body, [])
            return json_response(dump(body), headers={**DIALECT.id_headers(rid), **extra})
        body, output = result_json(env, answer.result)
        await saver.save(body, output)
        headers = served_raw(DIALECT, answer.served, rid, answer.ticket)
        headers += own_headers(extra)
        return json_response(dump(body), headers=headers)
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)


async def input_tokens(request: Request) -> Response:
    """An estimate of the input tokens a ``POST /v1/responses`` body would send."""
    root = state_of(request)
    exchange = exchange_of(request)
    try:
        await authenticate(root, request)
        body, _ = await root.agents.apply(await read_json(request, root.current.max_body_bytes))
        req = decode_response_request(body)
        exchange.model = req.chat.model
        root.current.models.get(req.chat.model)  # unknown: a 404 as on /v1/responses
        body = {"object": "response.input_tokens", "input_tokens": estimate_prompt_tokens(req.chat)}
        return json_response(dump(body), headers={"x-request-id": exchange.rid})
    except ModelyardError as err:
        return error_response(DIALECT, err, exchange.rid)


class Saver:
    """Reads the history a request continues and stores what it made."""

    __slots__ = ("history", "owner", "req", "state")

    def __init__(self, state: ResponseState, owner: str, req: ResponsesRequest) -> None:
        self.state, self.owner, self.req = state, owner, req
        self.history: list[JSON] = []  # the earlier turns' items (the tool loop reads them)

    async def resend_history(self) -> None:
        """The earlier turns of ``previous_response_id`` or ``conversation``, resent upstream
        before this request's input, and the stored items its ``item_reference`` items name
        put in their place (404 before anything is sent when not found)."""
        req = self.req
        if req.previous_response_id:
            history = await self.state.history(self.owner, req.previous_response_id)
        elif req.conversation:
            history = await self.state.conversation_items(self.owner, req.conversation)
        elif req.references:
            history = []
        else:
            return
        if req.references:
            await self.state.resolve(self.owner, req.items, req.references)
        self.history = history
        items = history + req.items
        req.chat.messages = instruction_messages(req.instructions) + to_messages(items, req.names)

    async def save(self, body: JSON, output: list[JSON]) -> None:
        req = self.req
        if req.store:
            await self.state.save(self.owner, body, req.items)
        if req.conversation:
            await self.state.append_items(self.owner, req.conversation, req.items + output)


async def _with_mcp_tools(run: McpRun, saver: Saver, headers: dict[str, str]) -> Response:
    """A response whose MCP tools the gateway runs, whole or streamed (in the background:
    ``mcp_background``)."""
    if run.req.chat.stream:
        response = mcp_stream(run, saver, saver.history)
    else:
        response = await mcp_json(run, saver, saver.history)
    response.headers.update(headers)
    return response


async def _background(
    root: Root, env: Envelope, who: tuple[str, str], work: Work, headers: dict[str, str]
) -> Response:
    """A background response: queued now, run in a task the request does not own; with
    ``stream``, its events follow here as they come (the run goes on if the client leaves)."""
    rid, owner = who  # the request id, the response's owner
    run = await start_background(root, env, owner, work)
    headers = {**DIALECT.id_headers(rid), **headers}
    if env.request.chat.stream:
        return StreamingResponse(
            run.follow(-1), headers={**headers, **SSE_HEADERS}, media_type="text/event-stream"
        )
    return json_response(dump(run.body), headers=headers)


async def _events(
    writer: ResponseStream, saver: Saver, streaming: Streaming, rid: str
) -> AsyncIterator[bytes]:
    yield writer.start()
    async for frame in stream_events(writer, streaming, rid):
        yield frame
    try:  # stored before the last event, so a client that retrieves it at once finds it
        await saver.save(writer.final, writer.output)
    except ModelyardError as err:
        log.error("request %s: response not stored: %s", rid, err.message)
        writer.failed(err)
    yield writer.terminal()


async def stream_events(
    writer: ResponseStream, streaming: Streaming, rid: str
) -> AsyncIterator[bytes]:
    """The frames of a started response's events, up to (not including) the terminal event;
    ``writer.final`` is then set. Shared by streamed and background responses."""
    try:
        async for batch in streaming.batches:  # the events of one upstream read: one write
            frames = joined(writer.encode, batch)
            if frames:
                yield frames
        closing = writer.close()
    except ContentBlocked as blocked:
        closing = (
            writer.blocked(blocked) if blocked.phase in OUTPUT_PHASES else writer.failed(blocked)
        )
    except ModelyardError as err:
        closing = writer.failed(err)
    except Exception:  # a bug after the first byte must still end the stream, not hang it
        log.exception("request %s: response stream failed", rid)
        await streaming.aclose(INTERNAL)
        closing = writer.failed(InternalError("internal error while streaming"))
    if closing:
        yield closing


ROUTES = (
    Route(PATH, create_response, methods=["POST"]),
    Route(PATH + "/input_tokens", input_tokens, methods=["POST"]),
    Route(PATH + "/{response_id}/cancel", cancel, methods=["POST"]),
)
