"""The chat call: plan a deployment's targets, walk them with failover, open or complete.

This is the pipeline's attempt step (see ``services.pipeline``): it knows targets, breakers and
capabilities, nothing of callers, limits or what happens to the answer afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from modelyard.core.chat import (
    CHARS_PER_TOKEN,
    ChatRequest,
    ChatResult,
    DocumentPart,
    ImagePart,
    TextPart,
)
from modelyard.core.events import StreamEvent
from modelyard.providers.base import CallContext
from modelyard.routing import Deployment, PlanRequest, Target, TargetHealth
from modelyard.routing.learned import OPT_OUT_HEADER
from modelyard.routing.router import Incapable, refusal
from modelyard.services.attempts import AttemptLoop, Sleep
from modelyard.services.gateway import Gateway, Resolved
from modelyard.services.params import apply_params

HeaderLookup = Callable[[str], str | None]
# The events of one read from the upstream, relayed and sent together; never empty.
Batch = list[StreamEvent]


@dataclass(slots=True)
class Served:
    """Who served a request: reported to the client in headers and kept for metering."""

    deployment: str
    provider: str
    model: str
    attempts: int = 1
    # A request-reading strategy's decision (``learned:balanced:weak:0.213``), else None.
    route: str | None = None
    # The model declined (a refusal), as the observer saw the answer (observability on): the
    # access line's ``refused``. Not a constructor argument: no call site knows it yet.
    refused: bool = dataclasses.field(default=False, init=False)


class Attempt(Protocol):
    """One upstream attempt as an observer sees it (``services.observed``)."""

    @property
    def ctx(self) -> CallContext:
        """The context to call with (the trace context of the attempt's span added)."""
        ...

    def failed(self, error: BaseException) -> None: ...

    def answered(self, result: ChatResult | None) -> None:
        """A whole answer, or (None) a stream's first event: the stream's attempt ends with
        the call."""


class AttemptWatch(Protocol):
    """Hears of each attempt of one call; None (the default) costs nothing."""

    def attempt(self, chosen: Resolved, ctx: CallContext) -> Attempt: ...


@dataclass(slots=True)
class Opened:
    """A stream whose first events have arrived (or that ended before any): failover is over.
    The events come in batches, those of one read from the upstream together."""

    served: Served
    first: Batch | None
    rest: AsyncIterator[Batch]
    health: TargetHealth  # the chosen target's breaker, told of a failure past this point


class ChatService:
    def __init__(
        self, gateway: Gateway, rng: random.Random | None = None, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._gateway = gateway
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not cryptography
        self._sleep = sleep  # the wait between attempts, injectable for tests

    @property
    def gateway(self) -> Gateway:
        return self._gateway

    def _loop(
        self, deployment: Deployment, request: ChatRequest, headers: HeaderLookup | None
    ) -> AttemptLoop:
        if len(deployment.targets) == 1:
            # Nothing to order and no strategy to consult: the plan is the target, once fit.
            only = self._gateway.resolved(deployment.targets[0])
            if only.info is not None:  # catalog facts to check the request against
                why = _incapable(_Asks(request, self._gateway.resolved), only)
                if why is not None:
                    raise refusal(why, deployment.name)
            return AttemptLoop([only], self._rng, self._sleep)
        sticky = headers(deployment.sticky_header) if headers and deployment.sticky_header else None
        if deployment.learned is not None or deployment.semantic is not None:
            return self._reading_loop(deployment, request, headers, sticky)
        plan = self._gateway.plan(
            PlanRequest(
                deployment,
                sticky_key=sticky,
                capable=_Asks(request, self._gateway.resolved),
                price_of=self._gateway.price_of,
            )
        )
        return AttemptLoop(plan, self._rng, self._sleep)

    def _reading_loop(
        self,
        deployment: Deployment,
        request: ChatRequest,
        headers: HeaderLookup | None,
        sticky: str | None,
    ) -> AttemptLoop:
        """A plan by a strategy that reads the request; its decision goes with the loop."""
        notes: list[str] = []
        opt_out = headers is not None and (headers(OPT_OUT_HEADER) or "").lower() == "off"
        plan = self._gateway.plan(
            PlanRequest(
                deployment,
                sticky_key=sticky,
                capable=_Asks(request, self._gateway.resolved),
                price_of=self._gateway.price_of,
                request=request,
                opt_out=opt_out,
                note=notes.append,
            )
        )
        return AttemptLoop(plan, self._rng, self._sleep, route=notes[-1] if notes else None)

    async def complete(
        self,
        deployment: Deployment,
        request: ChatRequest,
        ctx: CallContext,
        headers: HeaderLookup | None = None,
        watch: AttemptWatch | None = None,
    ) -> tuple[ChatResult, Served]:
        async def call(chosen: Resolved) -> ChatResult:
            upstream = apply_params(request, chosen.target.params)
            if watch is None:
                return await chosen.provider.chat(upstream, chosen.target.model, _ctx(ctx, chosen))
            # ``_watched``, inlined: one coroutine less on every observed call
            attempt = watch.attempt(chosen, _ctx(ctx, chosen))
            try:
                result = await chosen.provider.chat(upstream, chosen.target.model, attempt.ctx)
            except BaseException as exc:
                attempt.failed(exc)
                raise
            attempt.answered(result)
            return result

        loop = self._loop(deployment, request, headers)
        outcome = await loop.run(call)
        return outcome.value, _served(outcome.chosen, outcome.attempts, loop.route)

    async def complete_on(
        self,
        deployment: Deployment,
        target: Target,
        request: ChatRequest,
        ctx: CallContext,
        watch: AttemptWatch | None = None,
    ) -> tuple[ChatResult, Served]:
        """One call of one given target (a shadow candidate): no plan, no retry, no breaker."""
        chosen = self._gateway.candidate(deployment, target)
        upstream = apply_params(request, target.params)
        if watch is None:
            result = await chosen.provider.chat(upstream, target.model, _ctx(ctx, chosen))
        else:
            result = await _watched(watch, chosen, upstream, _ctx(ctx, chosen))
        return result, _served(chosen, 1)

    async def open(
        self,
        deployment: Deployment,
        request: ChatRequest,
        ctx: CallContext,
        headers: HeaderLookup | None = None,
        watch: AttemptWatch | None = None,
    ) -> Opened:
        """Open the stream and wait for its first events: failover happens only before them."""

        async def call(chosen: Resolved) -> tuple[Batch | None, AsyncIterator[Batch]]:
            upstream = apply_params(request, chosen.target.params)
            attempt = None if watch is None else watch.attempt(chosen, _ctx(ctx, chosen))
            call_ctx = _ctx(ctx, chosen) if attempt is None else attempt.ctx
            events = chosen.provider.stream_batches(upstream, chosen.target.model, call_ctx)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                first = None
            except BaseException as exc:
                if attempt is not None:
                    attempt.failed(exc)
                await close_events(events)
                raise
            if attempt is not None:
                attempt.answered(None)
            return first, events

        loop = self._loop(deployment, request, headers)
        outcome = await loop.run(call)
        first, rest = outcome.value
        served = _served(outcome.chosen, outcome.attempts, loop.route)
        return Opened(served, first, rest, outcome.chosen.health)


class _Asks:
    """What a request asks of a model that its messages say (images, PDF documents, the size
    of its prompt), read in one pass over them when a target's facts first need it, then
    compared with each target's: never read for targets without catalog facts. Called with
    a target of a plan (``resolve``: the gateway's), it is the plan's capability check."""

    __slots__ = ("_read", "_resolve", "images", "pdf", "prompt_tokens", "request")
    images: bool  # these three set by ``read``
    pdf: bool
    prompt_tokens: int

    def __init__(self, request: ChatRequest, resolve: Callable[[Target], Resolved]) -> None:
        self.request = request
        self._resolve = resolve
        self._read = False

    def __call__(self, target: Target) -> Incapable | None:
        return _incapable(self, self._resolve(target))

    def read(self) -> _Asks:
        """Itself, its facts read (the first time only); the same facts as the request's
        ``has_images``, ``has_pdf_documents`` and ``estimate_prompt_tokens``."""
        if self._read:
            return self
        self._read = True
        chars = 0
        images = pdf = False
        for message in self.request.messages:
            for part in message.content:
                if isinstance(part, TextPart):
                    chars += len(part.text)
                elif isinstance(part, ImagePart):
                    images = True
                elif isinstance(part, DocumentPart) and part.text is None:
                    pdf = True
        self.images, self.pdf, self.prompt_tokens = images, pdf, chars // CHARS_PER_TOKEN
        return self


def _incapable(asks: _Asks, chosen: Resolved) -> Incapable | None:
    """What ``chosen``'s model (by the catalog's facts) cannot do that the request asks."""
    info = chosen.info
    if info is None:
        return None
    request = asks.request
    if info.images is False and asks.read().images:
        return Incapable("image input", "messages")
    if info.tools is False and request.tools:
        return Incapable("tools", "tools")
    pdf = info.input_modalities is None or "pdf" in info.input_modalities
    if not pdf and asks.read().pdf:
        return Incapable("PDF documents", "messages")
    fmt = request.response_format
    if info.json_schema is False and fmt is not None and fmt.kind == "json_schema":
        return Incapable("json_schema output", "response_format")
    if info.max_output is not None and (request.max_tokens or 0) > info.max_output:
        return Incapable(f"max_tokens above {info.max_output}", "max_tokens")
    if info.context_window is not None:
        estimate = asks.read().prompt_tokens
        if estimate > info.context_window:
            return Incapable(
                f"a prompt of about {estimate} tokens (context {info.context_window})",
                "messages",
            )
    return None


def _ctx(ctx: CallContext, chosen: Resolved) -> CallContext:
    if chosen.target.timeouts is None:
        return ctx
    return dataclasses.replace(ctx, timeouts=chosen.target.timeouts)


async def _watched(
    watch: AttemptWatch, chosen: Resolved, request: ChatRequest, ctx: CallContext
) -> ChatResult:
    attempt = watch.attempt(chosen, ctx)
    try:
        result = await chosen.provider.chat(request, chosen.target.model, attempt.ctx)
    except BaseException as exc:
        attempt.failed(exc)
        raise
    attempt.answered(result)
    return result


def _served(chosen: Resolved, attempts: int, route: str | None = None) -> Served:
    return Served(
        chosen.deployment.name, chosen.provider.name, chosen.target.model, attempts, route
    )


async def close_events(events: AsyncIterator[Any]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
