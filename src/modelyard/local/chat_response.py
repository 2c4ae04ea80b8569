"""Turning a chat job's events into an OpenAI response: one JSON body, or an SSE stream."""

from __future__ import annotations

import asyncio

from modelyard.core.errors import UpstreamUnavailable
from modelyard.local.asgi import Responder
from modelyard.local.events import (
    ChatEvent,
    ChatRun,
    ChoiceEnd,
    GenerationFailed,
    TextDelta,
)
from modelyard.local.render import DONE_FRAME, Choice, CompletionIds, error_frame
from modelyard.local.wire import ChatParams


async def collect_chat(params: ChatParams, run: ChatRun) -> bytes:
    """Wait for the whole job and return the ``chat.completion`` body."""
    ids = CompletionIds(params.model)
    texts: list[list[str]] = [[] for _ in range(params.n)]
    finish_reasons = ["stop"] * params.n
    while True:
        event = await run.next_event()
        if isinstance(event, TextDelta):
            texts[event.index].append(event.text)
        elif isinstance(event, ChoiceEnd):
            finish_reasons[event.index] = event.finish_reason
        elif isinstance(event, GenerationFailed):
            raise event.error
        else:
            choices = [
                Choice("".join(parts), reason)
                for parts, reason in zip(texts, finish_reasons, strict=True)
            ]
            return ids.completion(choices, event.usage)


class _ChunkWriter:
    """Encodes events as ``chat.completion.chunk`` frames, in OpenAI's order."""

    def __init__(self, params: ChatParams) -> None:
        self._ids = CompletionIds(params.model)
        self._include_usage = params.include_usage
        self._opened: set[int] = set()

    def _chunk(self, index: int, delta: dict[str, str], finish: str | None = None) -> bytes:
        return self._ids.chunk(index, delta, finish, with_usage_field=self._include_usage)

    def _open(self, index: int) -> bytes:
        # Every choice starts with a chunk that carries only the role.
        if index in self._opened:
            return b""
        self._opened.add(index)
        return self._chunk(index, {"role": "assistant", "content": ""})

    def encode(self, event: ChatEvent) -> tuple[bytes, bool]:
        """The frames for ``event`` and whether the stream ends with them."""
        if isinstance(event, TextDelta):
            return self._open(event.index) + self._chunk(
                event.index, {"content": event.text}
            ), False
        if isinstance(event, ChoiceEnd):
            return self._open(event.index) + self._chunk(
                event.index, {}, event.finish_reason
            ), False
        if isinstance(event, GenerationFailed):
            return error_frame(event.error), True
        usage = self._ids.usage_chunk(event.usage) if self._include_usage else b""
        return usage + DONE_FRAME, True


async def stream_chat(out: Responder, params: ChatParams, run: ChatRun) -> None:
    """Send the job's events as SSE frames, ending with ``data: [DONE]``.

    The response starts only with the job's first event, so a job that fails at once (a prompt
    longer than the context) still gets a proper error status instead of an in-stream error.
    """
    writer = _ChunkWriter(params)
    event = await run.next_event()
    if isinstance(event, GenerationFailed):
        raise event.error
    await out.start_stream()
    try:
        while True:
            data, last = writer.encode(event)
            await out.write(data)
            if last:
                break
            event = await run.next_event()
    except asyncio.CancelledError:
        # Cut short (client gone, or the worker shutting down): say so rather than end the stream
        # as if it were complete. A client that is gone never sees it; uvicorn drops the write.
        await out.write(error_frame(UpstreamUnavailable("the local model worker stopped")))
        raise
    finally:
        await out.end_stream()
