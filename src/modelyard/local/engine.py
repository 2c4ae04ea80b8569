"""One served model: its llama.cpp instances, its inference thread and its fair queue.

The event loop never runs inference. A job (a chat completion, an embeddings batch) is admitted
by the model's ``FairQueue``, runs on the model's single inference thread, and sends what it
produces back to the loop with ``call_soon_threadsafe``. The queue slot is given back when the
thread finishes the job, not when the client stops listening, so the queue never admits a second
job while the thread is still busy with an abandoned one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from llama_cpp import Llama
from llama_cpp.llama_grammar import LlamaGrammar
from llama_cpp.llama_types import ChatCompletionRequestMessage

from modelyard.core.chat import FinishReason, Usage
from modelyard.core.errors import (
    InternalError,
    InvalidRequest,
    ModelyardError,
    UnsupportedCapability,
    UpstreamUnavailable,
)
from modelyard.core.events import Finished, TextDelta, ToolCallDelta, UsageReport
from modelyard.local import llama_model, tools
from modelyard.local.events import ChatEvent, ChatRun, GenerationFailed, call_soon
from modelyard.local.fair_queue import FairQueue, QueueTicket
from modelyard.local.llama_model import LoadedModel, LoadOptions
from modelyard.local.wire import ChatParams, EmbeddingParams

logger = logging.getLogger("modelyard.local")

_T = TypeVar("_T")

# No optional capability is offered by any model here, whatever its chat template says: image,
# audio and file input need a multimodal projector we do not load; tool calls need a parser for
# the model's own tool-call syntax (tools offered in ``tools`` are served with a grammar
# instead, see ``local/tools.py``; the legacy ``functions`` are not); logprobs need logits kept
# for every token;
# logit_bias would go through llama-cpp-python's custom-sampler hook, which its own source calls
# probably broken. Refusing is honest; silently ignoring the request's wish would not be.
_SUPPORTED: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PreparedChat:
    params: ChatParams
    grammar: LlamaGrammar | None


@dataclass(frozen=True)
class EngineOptions:
    threads: int
    ctx: int | None
    queue_size: int


def _translate(exc: Exception) -> ModelyardError:
    """Map what llama-cpp-python raises during a job to the core error tree."""
    if isinstance(exc, ModelyardError):
        return exc
    if isinstance(exc, ValueError):
        # llama-cpp-python raises ValueError for requests it cannot serve: a prompt longer than
        # the context, or a conversation the chat template rejects.
        message = str(exc)
        code = "context_length_exceeded" if "context window" in message else None
        return InvalidRequest(message, param="messages", code=code)
    logger.error("local inference failed", exc_info=exc)
    return InternalError("local inference failed")


class ModelEngine:
    """A loaded model ready to serve chat completions and embeddings."""

    def __init__(self, name: str, path: Path, options: EngineOptions) -> None:
        """Load the model; blocking."""
        self._options = options
        self._chat, self.info = llama_model.load_chat_model(
            name, path, LoadOptions(options.threads, options.ctx)
        )
        self._embedder: Llama | None = None
        self.queue = FairQueue(name, options.queue_size)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"llama-{name}"
        )
        self._running: set[threading.Event] = set()

    @property
    def name(self) -> str:
        return self.info.name

    def prepare(self, params: ChatParams) -> PreparedChat:
        """Check the request against what this model can do; build its grammar."""
        for need in params.needs:
            if need.capability not in _SUPPORTED:
                raise UnsupportedCapability(need.capability, self.name, param=need.param)
        if params.tools is not None:
            return PreparedChat(params, llama_model.grammar_for_schema(tools.schema(params.tools)))
        return PreparedChat(params, llama_model.grammar_for(params.response_format))

    def start_chat(self, prepared: PreparedChat, ticket: QueueTicket) -> ChatRun:
        """Run a chat job on the inference thread; ``ticket`` must hold the model."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[ChatEvent] = asyncio.Queue()
        cancel = threading.Event()

        def emit(event: ChatEvent) -> None:
            if not call_soon(loop, lambda: events.put_nowait(event)):
                cancel.set()

        def job() -> None:
            try:
                usage = self._generate(prepared, emit, cancel)
            except (ModelyardError, ValueError) as exc:
                emit(GenerationFailed(_translate(exc)))
            except Exception:
                # Whatever else llama.cpp raises still reaches the client, as a server error.
                logger.exception("local inference failed on model %s", self.name)
                emit(GenerationFailed(InternalError("local inference failed")))
            else:
                emit(UsageReport(usage))

        self._running.add(cancel)
        self._submit(job, ticket, lambda: self._running.discard(cancel))
        return ChatRun(events, cancel)

    async def embed(
        self, params: EmbeddingParams, ticket: QueueTicket
    ) -> tuple[list[list[float]], int]:
        """Embed ``params.inputs`` on the inference thread; ``ticket`` must hold the model."""
        return await asyncio.wrap_future(self._submit(lambda: self._embed(params), ticket))

    def cancel_all(self) -> None:
        """Stop every running generation at its next token (used on shutdown)."""
        for cancel in list(self._running):
            cancel.set()

    def close(self) -> None:
        """Free the model once the thread is done with its current job; does not block."""
        self.cancel_all()
        try:
            self._executor.submit(self._free)
        except RuntimeError:
            return  # already shut down
        self._executor.shutdown(wait=False, cancel_futures=False)

    def _submit(
        self, job: Callable[[], _T], ticket: QueueTicket, after: Callable[[], None] | None = None
    ) -> concurrent.futures.Future[_T]:
        loop = asyncio.get_running_loop()

        def on_loop() -> None:
            if after is not None:
                after()
            ticket.release()

        def finished(_: concurrent.futures.Future[_T]) -> None:
            # Runs on the inference thread; the queue and the bookkeeping belong to the loop.
            call_soon(loop, on_loop)

        try:
            future = self._executor.submit(job)
        except RuntimeError as exc:
            ticket.release()
            raise UpstreamUnavailable(f"model {self.name!r} is shutting down") from exc
        future.add_done_callback(finished)
        return future

    def _generate(
        self, prepared: PreparedChat, emit: Callable[[ChatEvent], None], cancel: threading.Event
    ) -> Usage:
        params = prepared.params
        # Roles were checked and folded by wire.parse_chat; the TypedDict union cannot see that.
        messages = cast(
            "list[ChatCompletionRequestMessage]",
            [{"role": m.role, "content": m.content} for m in params.messages],
        )
        kwargs = llama_model.completion_kwargs(params, prepared.grammar)
        prompt_tokens = completion_tokens = 0
        for index in range(params.n):
            if cancel.is_set():
                break
            meter = self._chat.metered(cancel)
            chunks = self._chat.create_chat_completion(
                messages=messages, seed=llama_model.choice_seed(params, index), **kwargs
            )
            if not isinstance(chunks, Generator):
                raise InternalError("llama-cpp-python did not stream the completion")
            # Token by token only when a client watches them arrive: each event wakes the event
            # loop, which then competes with the inference threads for the CPU.
            # With tools the output is JSON that only means something whole: it is collected.
            watch = emit if params.stream and params.tools is None else None
            text, finish_reason = _pump(chunks, index, watch, cancel)
            if params.tools is not None and finish_reason == "stop":
                finish_reason = _emit_parsed(tools.parse(text), index, emit)
            elif text:
                emit(TextDelta(text, index))
            prompt_tokens = prompt_tokens or meter.prompt_tokens
            completion_tokens += meter.completion_tokens
            emit(Finished(finish_reason, index))
        return Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens)

    def _embed(self, params: EmbeddingParams) -> tuple[list[list[float]], int]:
        try:
            if self._embedder is None:
                self._embedder = llama_model.load_embedder(
                    self._chat, self.info.path, self._options.threads
                )
            texts = [
                item if isinstance(item, str) else llama_model.detokenize(self._chat, item, index)
                for index, item in enumerate(params.inputs)
            ]
            return llama_model.embed_texts(self._embedder, texts)
        except Exception as exc:  # translated, never swallowed: the caller re-raises it
            raise _translate(exc) from exc

    def _free(self) -> None:
        self._chat.close()
        if self._embedder is not None:
            self._embedder.close()


def _emit_parsed(
    parsed: tools.Parsed, index: int, emit: Callable[[ChatEvent], None]
) -> FinishReason:
    """Send what a tool-offered choice wrote: its answer, or its call."""
    if parsed.answer is not None:
        if parsed.answer:
            emit(TextDelta(parsed.answer, index))
        return "stop"
    emit(ToolCallDelta(0, parsed.arguments, parsed.call_id, parsed.name, index))
    return "tool_calls"


# Tokens streamed within this interval travel together. Every frame wakes the worker's loop,
# the gateway and the client while llama.cpp's threads hold every core; one frame per token
# cost about 13 % of generation speed on 2 cores. The first token still goes out at once.
STREAM_FLUSH_INTERVAL_S = 0.02


def _pump(
    chunks: Generator[Any, None, None],
    index: int,
    emit: Callable[[ChatEvent], None] | None,
    cancel: threading.Event,
) -> tuple[str, FinishReason]:
    """Drain a llama stream, stopping early on ``cancel``.

    With ``emit``, each piece of text goes to the loop as it comes; without, the text is
    collected. Returns the collected text and the finish reason.
    """
    collected: list[str] = []
    pending: list[str] = []
    finish_reason: FinishReason = "stop"
    last_flush = 0.0
    try:
        for chunk in chunks:
            choice = chunk["choices"][0]
            text = choice["delta"].get("content")
            if text and emit is not None:
                pending.append(text)
                now = time.monotonic()
                if now - last_flush >= STREAM_FLUSH_INTERVAL_S:
                    emit(TextDelta("".join(pending), index))
                    pending.clear()
                    last_flush = now
            elif text:
                collected.append(text)
            if choice["finish_reason"] is not None:
                # llama.cpp ends a choice at a stop (EOS, a stop string) or at max_tokens.
                finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
            if cancel.is_set():
                break
    finally:
        chunks.close()
    if pending and emit is not None:
        emit(TextDelta("".join(pending), index))
    return "".join(collected), finish_reason


def load_engines(
    models: dict[str, Path], options: EngineOptions, on_loaded: Callable[[LoadedModel], None]
) -> dict[str, ModelEngine]:
    """Load every model, in order; a failure propagates after freeing what was loaded."""
    engines: dict[str, ModelEngine] = {}
    try:
        for name, path in models.items():
            engines[name] = ModelEngine(name, path, options)
            on_loaded(engines[name].info)
    except BaseException:
        for engine in engines.values():
            engine.close()
        raise
    return engines
