"""Shadow traffic: a sample of a deployment's requests also goes to a candidate target.

The client gets the primary's answer and never waits for the candidate: the candidate is called
in the background after the primary has answered, as a plain (non-streaming) call, and both
answers, latencies, token counts and costs are handed to a sink that stores them off the request
path. Shadow calls are bounded per deployment (``max_in_flight``); a sample that finds the bound
full is skipped and counted, never queued. A failing candidate is recorded with its error and
never touches the primary's breakers or the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from modelyard.core.chat import ChatRequest, ChatResult, Message, Usage
from modelyard.core.errors import ModelyardError
from modelyard.routing import Deployment, Target
from modelyard.services.pipeline import Caller
from modelyard.store.shadow_records import ShadowRecord

log = logging.getLogger("modelyard.shadow")
Record = Callable[[ShadowRecord], object]


class Candidates(Protocol):
    """The way to a candidate: the request pipeline of the config the primary was served by."""

    def cost_of(self, provider: str, model: str, usage: Usage | None) -> int | None: ...

    async def candidate(
        self, caller: Caller, deployment: Deployment, target: Target, request: ChatRequest
    ) -> ChatResult: ...


@dataclass(frozen=True, slots=True)
class PrimaryAnswer:
    provider: str
    model: str
    text: str
    usage: Usage | None
    latency_s: float
    refusal: str | None = None  # the primary declined, in these words (apart from ``text``)


class ShadowMirror:
    """Lives as long as the server (across reloads); the pipeline of each call is passed in."""

    def __init__(
        self,
        record: Record,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._record = record
        self._rng = rng or random.Random()  # noqa: S311  # sampling, not cryptography
        self._clock = clock
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped = 0
        self.mirrored = 0

    def sampled(self, deployment: Deployment) -> bool:
        shadow = deployment.shadow
        return shadow is not None and self._rng.random() * 100 < shadow.percent

    def mirror(
        self,
        pipeline: Candidates,
        deployment: Deployment,
        request: ChatRequest,
        caller: Caller,
        primary: PrimaryAnswer,
    ) -> None:
        """Start the candidate's call in the background (or skip it when at the bound)."""
        shadow = deployment.shadow
        if shadow is None:
            return
        running = self._in_flight.get(deployment.name, 0)
        if running >= shadow.max_in_flight:
            self.skipped += 1
            return
        self._in_flight[deployment.name] = running + 1
        call = _Call(pipeline, deployment, request, caller, primary)
        task = asyncio.get_running_loop().create_task(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: _Call) -> None:
        try:
            self._record(await self._candidate(call))
            self.mirrored += 1
        except Exception:  # a shadow must never take anything down with it
            log.exception("shadow call for request %s failed", call.caller.request_id)
        finally:
            self._in_flight[call.deployment.name] -= 1

    async def _candidate(self, call: _Call) -> ShadowRecord:
        shadow = call.deployment.shadow
        assert shadow is not None
        target = shadow.target
        upstream = dataclasses.replace(call.request, stream=False, include_usage=False)
        # Its own id, the primary as its parent; unmetered: the shadow's cost is in its record.
        rid = call.caller.request_id
        caller = Caller(call.caller.principal, f"{rid}-shadow", "shadow", rid, metered=False)
        started = self._clock()
        output: str | None = None
        refusal: str | None = None
        usage: Usage | None = None
        error: str | None = None
        try:
            result = await call.pipeline.candidate(caller, call.deployment, target, upstream)
            output, refusal, usage = result_text(result), result_refusal(result), result.usage
        except ModelyardError as err:
            error = f"{err.status} {err.kind}: {err.message}"
        latency = self._clock() - started
        primary = call.primary
        gateway = call.pipeline
        return ShadowRecord(
            created_at=datetime.now(UTC),
            request_id=rid,
            deployment=call.deployment.name,
            request=request_json(call.request),
            primary_provider=primary.provider,
            primary_model=primary.model,
            primary_output=primary.text,
            primary_latency_ms=round(primary.latency_s * 1000, 3),
            primary_input_tokens=primary.usage.input_tokens if primary.usage else 0,
            primary_output_tokens=primary.usage.output_tokens if primary.usage else 0,
            primary_cost_micros=gateway.cost_of(primary.provider, primary.model, primary.usage),
            candidate_provider=target.provider,
            candidate_model=target.model,
            candidate_output=output,
            candidate_latency_ms=round(latency * 1000, 3),
            candidate_input_tokens=usage.input_tokens if usage else 0,
            candidate_output_tokens=usage.output_tokens if usage else 0,
            candidate_cost_micros=gateway.cost_of(target.provider, target.model, usage),
            candidate_error=error,
            primary_refusal=primary.refusal,
            candidate_refusal=refusal,
        )

    async def aclose(self, grace_s: float = 5.0) -> None:
        """Give running shadow calls ``grace_s`` to finish, then cancel the rest."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True, slots=True)
class _Call:
    pipeline: Candidates
    deployment: Deployment
    request: ChatRequest
    caller: Caller
    primary: PrimaryAnswer


def result_text(result: ChatResult) -> str:
    """The first choice's answer as text (``answer_text``); its refusal is apart
    (``result_refusal``)."""
    if not result.choices:
        return ""
    return answer_text(result.choices[0].message)


def result_refusal(result: ChatResult) -> str | None:
    """The first choice's refusal: the words the model declined with, None when it did not."""
    return result.choices[0].message.refusal if result.choices else None


def answer_text(message: Message) -> str:
    """What a model answered, as text: its text, then its tool calls as ``name(arguments)``
    lines."""
    parts = [message.text()]
    parts.extend(f"{call.name}({call.arguments})" for call in message.tool_calls)
    return "\n".join(p for p in parts if p)


def message_text(message: Message) -> str:
    """A turn of the request as text: its text, a refusal it holds, then its tool calls as
    ``name(arguments)`` lines."""
    parts = [message.text(), message.refusal or ""]
    parts.extend(f"{call.name}({call.arguments})" for call in message.tool_calls)
    return "\n".join(p for p in parts if p)


def request_json(request: ChatRequest) -> str:
    """What the candidate was asked: messages as role and text, plus the generation options."""
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        entry: dict[str, Any] = {"role": m.role, "content": message_text(m)}
        if m.has_images():
            entry["images"] = True
        messages.append(entry)
    body: dict[str, Any] = {"messages": messages}
    if request.tools:
        body["tools"] = [t.name for t in request.tools]
    for key in ("max_tokens", "temperature", "top_p"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    return orjson.dumps(body).decode()
