"""Turning a chat job's events into an OpenAI response: one JSON body, or an SSE stream.

Both are encoded by ``protocols.openai.encode``, as the gateway encodes its own answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from modelyard.core.chat import ChatResult, Choice, FinishReason, Message, TextPart, ToolCall
from modelyard.core.errors import UpstreamUnavailable
from modelyard.core.events import Finished, TextDelta, ToolCallDelta, UsageReport
from modelyard.local.asgi import Responder
from modelyard.local.events import ChatRun, GenerationFailed
from modelyard.local.wire import ChatParams
from modelyard.protocols.openai.encode import ChunkEncoder, completion_json
from modelyard.protocols.openai.errors import stream_error_frame


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


async def collect_chat(params: ChatParams, run: ChatRun) -> bytes:
    """Wait for the whole job and return the ``chat.completion`` body."""
    response_id, created = _completion_id(), int(time.time())
    texts: list[list[str]] = [[] for _ in range(params.n)]
    finish_reasons: list[FinishReason] = ["stop"] * params.n
    calls: list[tuple[ToolCall, ...]] = [()] * params.n
    while True:
        event = await run.next_event()
        if isinstance(event, TextDelta):
            texts[event.index].append(event.text)
        elif isinstance(event, ToolCallDelta):
            # The engine sends each call whole, in one delta.
            call = ToolCall(event.id or "", event.name or "", event.arguments)
            calls[event.index] = (*calls[event.index], call)
        elif isinstance(event, Finished):
            finish_reasons[event.index] = event.reason
        elif isinstance(event, GenerationFailed):
            raise event.error
        else:
            choices = [
                Choice(index, _message(texts[index], calls[index]), reason)
                for index, reason in enumerate(finish_reasons)
            ]
            result = ChatResult(choices, event.usage)
            return completion_json(result, response_id, created, params.model)


def _message(parts: list[str], calls: tuple[ToolCall, ...]) -> Message:
    if calls:
        return Message("assistant", (), tool_calls=calls)
    return Message("assistant", (TextPart("".join(parts)),))


async def stream_chat(out: Responder, params: ChatParams, run: ChatRun) -> None:
    """Send the job's events as SSE frames, ending with ``data: [DONE]``.

    The response starts only with the job's first event, so a job that fails at once (a prompt
    longer than the context) still gets a proper error status instead of an in-stream error.
    """
    encoder = ChunkEncoder(_completion_id(), int(time.time()), params.model, params.include_usage)
    event = await run.next_event()
    if isinstance(event, GenerationFailed):
        raise event.error
    await out.start_stream()
    try:
        while True:
            if isinstance(event, GenerationFailed):
                await out.write(stream_error_frame(event.error))
                break
            data = encoder.encode(event)
            if isinstance(event, UsageReport):  # the job's last event
                await out.write((data or b"") + encoder.close())
                break
            if data:
                await out.write(data)
            event = await run.next_event()
    except asyncio.CancelledError:
        # Cut short (client gone, or the worker shutting down): say so rather than end the stream
        # as if it were complete. A client that is gone never sees it; uvicorn drops the write.
        await out.write(stream_error_frame(UpstreamUnavailable("the local model worker stopped")))
        raise
    finally:
        await out.end_stream()
