"""Background responses on the wire: starting one, retrieving it (JSON or a replayed and
followed event stream), cancelling it. The runs themselves are ``services.background``.

A background response answers at once with ``status: queued`` (or, with ``stream: true``, with
its events as they come); its work runs in a task the HTTP request does not own. Its events
are the same as a streamed response's (``response.created`` ... ``response.completed``), with
``sequence_number`` counting from 0, so ``GET /v1/responses/{id}?stream=true&starting_after=N``
resumes after event N. A cancelled run's stream ends without a terminal event (the spec has no
``response.cancelled``); the final object says ``cancelled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelyard.core.errors import InternalError, InvalidRequest, ModelyardError
from modelyard.protocols.openai.responses.encode import Envelope, dump, response_json
from modelyard.protocols.openai.responses.request import JSON
from modelyard.protocols.openai.responses.stream import ResponseStream
from modelyard.protocols.validate import bad
from modelyard.server.chat_route import SSE_HEADERS, authenticate, error_response, state_of
from modelyard.server.http import exchange_of, json_response
from modelyard.server.openai_routes import DIALECT
from modelyard.services.background import STOPPED, LiveRun, Work, split_events
from modelyard.services.pipeline import CLIENT_GONE, INTERNAL, Caller, Pipeline, Streaming
from modelyard.services.response_state import ResponseState, owner_of
from modelyard.services.root import Root

_RETRIEVE_PARAMS = frozenset({"stream", "starting_after", "include", "include_obfuscation"})


class Saving(Protocol):
    """What the work needs of the route's ``Saver``: it stores the response at its end."""

    owner: str

    async def save(self, body: JSON, output: list[JSON]) -> None: ...


Frames = Callable[[ResponseStream, Streaming, str], AsyncIterator[bytes]]


@dataclass(frozen=True, slots=True)
class Job:
    """One background response's work: what the route prepared."""

    pipeline: Pipeline
    caller: Caller
    env: Envelope
    saver: Saving
    frames: Frames  # the route's event loop (the same as a streamed response's)


def job_work(job: Job) -> Work:
    """The work of a background response without tools the gateway runs: one pipeline stream."""

    async def work(run: LiveRun) -> JSON:
        return await _work(run, job)

    return work


async def start_background(root: Root, env: Envelope, owner: str, work: Work) -> LiveRun:
    """Queue the response: recorded ``queued``, ``work`` started in a task of its own."""
    queued = response_json(env, "queued", [], None)
    del queued["usage"]  # none yet: the spec's usage is an object, and optional
    return await root.background.start(env.id, owner, queued, work)


async def _work(run: LiveRun, job: Job) -> JSON:
    env, saver = job.env, job.saver
    writer = ResponseStream(env)
    run.add(writer.start())
    streaming = None
    try:
        streaming = await job.pipeline.stream(job.caller, env.request.chat)
        async for frame in job.frames(writer, streaming, job.caller.request_id):
            run.add(frame)
    except ModelyardError as err:  # before the first upstream event: the response failed
        run.add(writer.failed(err))
    except asyncio.CancelledError as exc:
        if streaming is not None:  # the upstream stream is closed: generation stops
            await streaming.aclose(INTERNAL if STOPPED in exc.args else CLIENT_GONE)
        return await ended_by(run, writer, saver, exc)
    if not writer.final:  # nothing closed it (a failure before the stream)
        writer.final = response_json(env, "failed", writer.output, writer.usage)
    await saver.save(writer.final, writer.output)
    run.add(writer.terminal())
    return writer.final


async def ended_by(
    run: LiveRun, writer: ResponseStream, saver: Saving, exc: asyncio.CancelledError
) -> JSON:
    """End a run its cancellation stopped: ``cancelled`` (no terminal event: the spec has
    none), or ``failed`` when the gateway stopped; stored either way."""
    stopped = STOPPED in exc.args
    run.add(writer.failed(InternalError(STOPPED)) if stopped else writer.cancelled())
    await saver.save(writer.final, writer.output)
    if stopped:
        run.add(writer.terminal())
    return writer.final


async def retrieve(request: Request) -> Response:
    """``GET /v1/responses/{id}``: a background run of this process live, else as stored;
    ``?stream=true`` replays a background response's events after ``starting_after``."""
    root = state_of(request)
    rid = exchange_of(request).rid
    response_id = request.path_params["response_id"]
    try:
        owner = owner_of(await authenticate(root, request))
        stream, after = _retrieve_query(request)
        run = root.background.find(response_id, owner)
        if stream:
            return await _replay(root, run, response_id, owner, after, rid)
        if run is not None:
            return json_response(dump(run.body), headers={"x-request-id": rid})
        body = await _stored_body(root, response_id, owner)
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    return json_response(dump(body), headers={"x-request-id": rid})


async def cancel(request: Request) -> Response:
    """``POST /v1/responses/{id}/cancel``: only a background response can be cancelled (400
    for another); one that has ended is returned as it is."""
    root = state_of(request)
    rid = exchange_of(request).rid
    response_id = request.path_params["response_id"]
    try:
        owner = owner_of(await authenticate(root, request))
        body = await root.background.cancel(response_id, owner)
        if body is None:
            body = await _stored_body(root, response_id, owner)
            if not body.get("background"):
                raise InvalidRequest(
                    f"response {response_id!r} is not a background response: only those can "
                    "be cancelled",
                    param="response_id",
                    code="invalid_request",
                )
            if body.get("status") in ("queued", "in_progress"):
                raise InvalidRequest(
                    f"response {response_id!r} runs in another gateway process; cancel it "
                    "through that one (or wait for it)",
                    param="response_id",
                    code="run_elsewhere",
                )
    except ModelyardError as err:
        return error_response(DIALECT, err, rid)
    return json_response(dump(body), headers={"x-request-id": rid})


async def _stored_body(root: Root, response_id: str, owner: str) -> JSON:
    """As stored, or, for a background run another process still runs, its latest body; only
    an id that is neither looks again after another process's flush (``ResponseState.get``),
    so polling another worker's run costs no wait."""
    state = ResponseState(root.store, root.response_writes)
    written = await state.written(owner, response_id)
    if written is not None:
        return written
    run = await root.background.stored(response_id, owner)
    if run is not None:
        body: JSON = orjson.loads(run.body)
        return body
    return await state.get(owner, response_id)


def _retrieve_query(request: Request) -> tuple[bool, int]:
    query = request.query_params
    unknown = sorted(set(query) - _RETRIEVE_PARAMS)
    if unknown:
        accepted = ", ".join(sorted(_RETRIEVE_PARAMS))
        raise bad(unknown[0], f"unknown query parameter; accepted: {accepted}")
    stream = query.get("stream", "false")
    if stream not in ("true", "false"):
        raise bad("stream", f"must be true or false; got {stream[:20]!r}")
    raw = query.get("starting_after")
    if raw is not None and not (raw.isdigit() and len(raw) <= 9):
        raise bad("starting_after", "must be an event's sequence number (an integer >= 0)")
    return stream == "true", int(raw) if raw is not None else -1


async def _replay(
    root: Root, run: LiveRun | None, response_id: str, owner: str, after: int, rid: str
) -> Response:
    if run is not None:
        events: AsyncIterator[bytes] = run.follow(after)
    else:
        stored = await root.background.stored(response_id, owner)
        if stored is None:
            await ResponseState(root.store, root.response_writes).get(owner, response_id)  # 404?
            raise bad("stream", "only background responses can be streamed when retrieved")
        if stored.events is None:
            raise InvalidRequest(
                f"response {response_id!r} runs in another gateway process; poll it, or stream "
                "it through that one",
                param="stream",
                code="run_elsewhere",
            )
        events = _after(split_events(stored.events.encode()), after)
    headers = {**SSE_HEADERS, "x-request-id": rid}
    return StreamingResponse(events, headers=headers, media_type="text/event-stream")


async def _after(events: list[bytes], after: int) -> AsyncIterator[bytes]:
    for event in events[after + 1 :]:
        yield event
