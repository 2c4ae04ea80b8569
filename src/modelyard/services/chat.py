"""The chat use case: resolve the deployment, plan its targets, call them with failover."""

from __future__ import annotations

import dataclasses
import functools
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

from modelyard.core.chat import ChatRequest, ChatResult, Usage, estimate_prompt_tokens
from modelyard.core.errors import ModelyardError
from modelyard.core.events import StreamEvent, TextDelta, ToolCallDelta, UsageReport
from modelyard.providers.base import CallContext
from modelyard.routing import Deployment, PlanRequest, Target, TargetHealth
from modelyard.services.attempts import AttemptLoop, Sleep
from modelyard.services.gateway import Gateway, Resolved
from modelyard.services.params import apply_params
from modelyard.services.shadow import PrimaryAnswer, ShadowMirror, result_text

HeaderLookup = Callable[[str], str | None]


@dataclass(slots=True)
class Served:
    """Who served a request: reported to the client in headers and kept for metering."""

    deployment: str
    provider: str
    model: str
    attempts: int = 1


@dataclass(slots=True)
class ChatStream:
    served: Served
    events: AsyncGenerator[StreamEvent, None]


class ChatService:
    def __init__(
        self,
        gateway: Gateway,
        rng: random.Random | None = None,
        shadow: ShadowMirror | None = None,
    ) -> None:
        self._gateway = gateway
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not cryptography
        self._shadow = shadow
        self.sleep: Sleep | None = None  # tests may replace the wait between attempts

    def _loop(
        self, deployment: Deployment, request: ChatRequest, headers: HeaderLookup | None
    ) -> AttemptLoop:
        sticky = headers(deployment.sticky_header) if headers and deployment.sticky_header else None
        plan = self._gateway.plan(
            PlanRequest(
                deployment,
                sticky_key=sticky,
                capable=lambda target: self._incapable(request, target),
                price_of=self._gateway.price_of,
            )
        )
        if self.sleep is None:
            return AttemptLoop(plan, self._rng)
        return AttemptLoop(plan, self._rng, self.sleep)

    def _health(self, chosen: Resolved) -> TargetHealth:
        return self._gateway.router.health.of(chosen.target.key)

    async def complete(
        self, request: ChatRequest, ctx: CallContext, headers: HeaderLookup | None = None
    ) -> tuple[ChatResult, Served]:
        async def call(chosen: Resolved) -> ChatResult:
            upstream = apply_params(request, chosen.target.params)
            return await chosen.provider.chat(upstream, chosen.target.model, _ctx(ctx, chosen))

        started = time.perf_counter()
        deployment = self._gateway.table.resolve(request.model)
        outcome = await self._loop(deployment, request, headers).run(call, self._health)
        served = _served(outcome.chosen, outcome.attempts)
        if self._shadow is not None and self._shadow.sampled(deployment):
            result = outcome.value
            answer = PrimaryAnswer(
                served.provider,
                served.model,
                result_text(result),
                result.usage,
                time.perf_counter() - started,
            )
            self._shadow.mirror(self._gateway, deployment, request, ctx.request_id, answer)
        return outcome.value, served

    async def stream(
        self, request: ChatRequest, ctx: CallContext, headers: HeaderLookup | None = None
    ) -> ChatStream:
        """Open the stream and wait for its first event: failover happens only before it."""

        async def call(chosen: Resolved) -> tuple[StreamEvent | None, AsyncIterator[StreamEvent]]:
            upstream = apply_params(request, chosen.target.params)
            events = chosen.provider.stream(upstream, chosen.target.model, _ctx(ctx, chosen))
            try:
                return await anext(events), events
            except StopAsyncIteration:
                return None, events
            except BaseException:
                await _close(events)
                raise

        started = time.perf_counter()
        deployment = self._gateway.table.resolve(request.model)
        outcome = await self._loop(deployment, request, headers).run(call, self._health)
        first, rest = outcome.value
        health = self._health(outcome.chosen)
        served = _served(outcome.chosen, outcome.attempts)
        events = _continue(first, rest, health)
        if self._shadow is not None and self._shadow.sampled(deployment):
            mirror = functools.partial(
                self._shadow.mirror, self._gateway, deployment, request, ctx.request_id
            )
            events = _observed(events, served, started, mirror)
        return ChatStream(served, events)

    def _incapable(self, request: ChatRequest, target: Target) -> str | None:
        provider = self._gateway.providers[target.provider]
        info = self._gateway.catalog.lookup(provider.settings.type, target.model)
        if info is None:
            return None
        if info.images is False and request.has_images():
            return "image input"
        if info.tools is False and request.tools:
            return "tools"
        fmt = request.response_format
        if info.json_schema is False and fmt is not None and fmt.kind == "json_schema":
            return "json_schema output"
        if info.max_output is not None and (request.max_tokens or 0) > info.max_output:
            return f"max_tokens above {info.max_output}"
        if info.context_window is not None:
            estimate = estimate_prompt_tokens(request)
            if estimate > info.context_window:
                return f"a prompt of about {estimate} tokens (context {info.context_window})"
        return None


def _ctx(ctx: CallContext, chosen: Resolved) -> CallContext:
    if chosen.target.timeouts is None:
        return ctx
    return dataclasses.replace(ctx, timeouts=chosen.target.timeouts)


def _served(chosen: Resolved, attempts: int) -> Served:
    return Served(chosen.deployment.name, chosen.provider.name, chosen.target.model, attempts)


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def _continue(
    first: StreamEvent | None, rest: AsyncIterator[StreamEvent], health: TargetHealth
) -> AsyncGenerator[StreamEvent, None]:
    """The stream after its first event; a failure past that point counts against the target."""
    try:
        if first is not None:
            yield first
        async for event in rest:
            yield event
    except ModelyardError:
        health.failure()
        raise
    finally:
        await _close(rest)


async def _observed(
    events: AsyncGenerator[StreamEvent, None],
    served: Served,
    started: float,
    mirror: Callable[[PrimaryAnswer], None],
) -> AsyncGenerator[StreamEvent, None]:
    """The stream unchanged; once it has ended well, its answer goes to the shadow mirror."""
    text: list[str] = []
    calls: dict[int, list[str]] = {}
    usage: Usage | None = None
    try:
        async for event in events:
            if isinstance(event, TextDelta) and event.index == 0:
                text.append(event.text)
            elif isinstance(event, ToolCallDelta) and event.index == 0:
                call = calls.setdefault(event.call_index, ["", ""])
                call[0] += event.name or ""
                call[1] += event.arguments
            elif isinstance(event, UsageReport):
                usage = event.usage
            yield event
    finally:
        await events.aclose()
    answer = "".join(text)
    lines = [answer, *(f"{name}({args})" for name, args in calls.values())]
    elapsed = time.perf_counter() - started
    mirror(
        PrimaryAnswer(
            served.provider, served.model, "\n".join(x for x in lines if x), usage, elapsed
        )
    )
