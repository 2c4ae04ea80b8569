"""The request pipeline: the one way a model is called, by a route or by our own code.

    admit ─► pre-call stages ─► attempt loop ─► stream stages ─► finish
    (limits)  (on the decoded     (failover     (health, usage,   (settle + ledger row,
               request, in order)  before the    shadow, then      exactly once)
                                   first event)  post-call guards)

``complete`` and ``stream`` are the same steps; only the answer's shape differs. A stream
stage opens a ``Tap`` per call, which sees each event of a streamed answer (``event``) or the
whole of a non-streamed one (``result``: by default the answer's events, fed to ``event``, so a
stage written for streams sees whole answers too) and hears how the call ended (``end``).
Taps run in the stages' order; each may replace what it is given, or raise a
``ModelyardError`` to stop the answer.

Every admitted call is finished exactly once, whatever ends it: an answer, an error (ours or
not a ``ModelyardError`` at all: 500), a client that leaves (499), a cancellation. The finish
queues the ledger row, settles the reservation, then tells the taps. A stream's finish, and any
settlement that waits on a remote limiter, run in a task of their own that a cancellation does
not reach, so a client that leaves while limits are in Redis cannot leak its reservation or
lose its row; with the memory limiter a non-streamed call's finish never waits and makes no task.

A caller that makes several upstream calls for one request (an agent's steps) passes
``Caller.step(n)``: each step is admitted and metered on its own, with its own request id and
the parent's id in ``parent_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Sequence,
)
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from modelyard.core.chat import ChatRequest, ChatResult, Usage
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.core.errors import ModelyardError
from modelyard.core.events import (
    Finished,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)
from modelyard.providers.base import CallContext
from modelyard.providers.errors import unreadable
from modelyard.routing import Deployment, Target, TargetHealth
from modelyard.services.chat import (
    AttemptWatch,
    Batch,
    ChatService,
    HeaderLookup,
    Opened,
    Served,
    close_events,
)
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import (
    Call,
    Meter,
    Ticket,
    estimate_embedding_usage,
    estimate_usage,
)
from modelyard.tenancy.keys import Principal

# The longest model name kept in a ledger row (its ``deployment`` column holds 128).
MAX_MODEL = 128
CLIENT_GONE = 499  # the client closed the connection before the answer ended
INTERNAL = 500


@dataclass(slots=True)
class Caller:
    """Who calls, and how the call is labelled in the ledger."""

    principal: Principal
    request_id: str
    endpoint: str
    parent_id: str | None = None  # the request this call is a step of
    headers: HeaderLookup | None = None  # the client's headers (sticky routing)
    metered: bool = True  # False: no limits, no ledger row (a shadow candidate's call)

    def step(self, n: int) -> Caller:
        """Step ``n`` of this request: its own id, this request as its parent."""
        rid = self.request_id
        return Caller(self.principal, f"{rid}.{n}", self.endpoint, rid, self.headers, self.metered)


@dataclass(slots=True, eq=False)
class Run:
    """One call on its way through the pipeline, as stages see it."""

    pipeline: Pipeline  # for stages that call a model themselves (a judge, a shadow)
    caller: Caller
    request: ChatRequest
    ticket: Ticket | None  # None: not metered
    deployment: Deployment | None = None
    served: Served | None = None
    health: TargetHealth | None = None  # streams: the chosen target's breaker
    candidate: Target | None = None  # a given target instead of the deployment's plan
    status: int = 0  # once finished: 200, the error's status, or 499
    error: BaseException | None = None
    upstream_failed: bool = False  # the error came from the upstream, not from a stage
    finished: bool = False
    guarded: object | None = None  # the guardrails' state of this call (``services.guards``)
    watched: CallWatcher | None = None  # the observer's view of this call (observability on)

    @property
    def streamed(self) -> bool:
        return self.request.stream


# What a tap makes of one event: the event (replaced or not), or several (a guard releasing
# held-back text before a finish), or none (``()``: a guard holding text back).
Passed = StreamEvent | tuple[StreamEvent, ...]


class Tap:
    """One call as a stream stage sees it; the defaults pass everything through.

    A tap that only looks at the answer (counts it, copies it) overrides ``saw``: it gets
    each batch of events whole (the events of one upstream read), once. A tap that may
    replace, hold back or refuse an event overrides ``event``: it gets the events one by one,
    and the relay sends on what it returns. A tap that does neither costs nothing per event.

    A tap that must wait before it can pass what it holds (an output guard asking a judge at
    the end of a stream) sets ``owed`` and returns ``()``; the relay then awaits ``settle``
    and sends what it gives. Only the last stream stage may do so (the output guards are):
    what ``settle`` gives goes to the client as it is."""

    __slots__ = ()
    owed: bool = False  # ``settle`` has events to give (a class default: costs nothing)

    async def settle(self) -> tuple[StreamEvent, ...]:
        return ()

    def saw(self, batch: Batch) -> None:
        """A batch of events, as the taps before this one passed it; nothing to return."""

    def event(self, event: StreamEvent) -> Passed:
        return event

    def result(self, result: ChatResult) -> ChatResult:
        events = list(result_events(result))
        self.saw(events)
        for event in events:
            self.event(event)
        return result

    def end(self, run: Run) -> None:
        """The call ended (``run.status``, ``run.error``); called once, after its settlement
        and ledger row (``run.ticket.cost_micros`` is known)."""


class StreamStage(Protocol):
    """Opens a tap per call, or None to stay out of it."""

    @property
    def name(self) -> str: ...

    def open(self, run: Run) -> Tap | None: ...


class PreStage(Protocol):
    """Sees (and may replace, or refuse with a ``ModelyardError``) the decoded request."""

    @property
    def name(self) -> str: ...

    async def check(self, run: Run, request: ChatRequest) -> ChatRequest: ...


class CallWatcher(AttemptWatch, Protocol):
    """The observer's watch on one call: hears of each attempt, and of the call's end (after
    the taps)."""

    def finish(self, run: Run) -> None: ...


class Observer(Protocol):
    """Sees every call once (``services.observed``): begun when admitted (its watch is told
    of the attempts and the finish), told of a refusal at admission; None (the default)
    costs nothing."""

    def begin(self, run: Run) -> CallWatcher: ...

    def refused(self, caller: Caller, error: ModelyardError) -> None: ...

    def tool_started(self, name: str, call_id: str, server: str) -> Callable[[int], None] | None:
        """A tool execution's span begins; the function returned ends it with its status."""
        ...


Tool = tuple[str, str, str]  # (tool name, call id, server label)


@dataclass(slots=True)
class Step:
    """A step that is not a model call (``Pipeline.step``): its ledger ticket and span."""

    ticket: Ticket | None
    end_span: Callable[[int], None] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    result: ChatResult
    served: Served
    ticket: Ticket | None


@dataclass(frozen=True, slots=True)
class Stages:
    """The stages in the order they run; names must be unique."""

    pre: Sequence[PreStage] = ()
    stream: Sequence[StreamStage] = ()

    def __post_init__(self) -> None:
        names = self.names()
        if len(names) != len(set(names)):
            raise ValueError(f"stage names must be unique: {names}")

    def names(self) -> list[str]:
        return [s.name for s in self.pre] + [s.name for s in self.stream]


class Pipeline:
    """One per config (a reload builds a new one); the meter outlives it."""

    def __init__(
        self,
        chat: ChatService,
        embeddings: EmbeddingService,
        meter: Meter,
        stages: Stages,
        ending: set[asyncio.Task[None]],
        observer: Observer | None = None,
    ) -> None:
        self._chat = chat
        self._observer = observer
        self._embeddings = embeddings
        self._meter = meter
        self._pre = tuple(stages.pre)
        self._stream = tuple(stages.stream)
        # Stream stages that also check whole answers asynchronously (``after``: the schema
        # guard, which may ask the model again); none unless guardrails are configured.
        self._after = tuple(s for s in stages.stream if hasattr(s, "after"))
        # Stream stages that see whole answers too; the observer's taps streams only (it has
        # seen a whole answer as its attempt's): ``streams_only``.
        self._whole = tuple(s for s in stages.stream if not getattr(s, "streams_only", False))
        # Whether a tap may turn one event into several or none (``expands``: the output
        # guards): only then does the relay pay for checking, tap by tap.
        self.expands = any(getattr(s, "expands", False) for s in stages.stream)
        self.stages = stages
        self._ending = ending  # finishes under way, shared across reloads (awaited at shutdown)

    @property
    def gateway(self) -> Gateway:
        return self._chat.gateway

    def cost_of(self, provider: str, model: str, usage: Usage | None) -> int | None:
        return self._chat.gateway.cost_of(provider, model, usage)

    async def complete(self, caller: Caller, request: ChatRequest) -> Answer:
        """A whole answer; finished (settled, recorded) before it is returned."""
        estimate = partial(estimate_usage, request)
        ticket = await self._ticket(caller, request.model, estimate, False)
        return await self._complete(Run(self, caller, request, ticket), request)

    async def step(self, caller: Caller, deployment: str, tool: Tool) -> Step:
        """A step of a request that is not a model call (a tool the gateway runs), admitted
        against the caller's limits as one request of no tokens; ``end_step`` records it as a
        ledger row (its ``caller.parent_id`` the request it belongs to) and ends its span."""
        ticket = None
        if caller.metered:
            call = Call(caller.request_id, caller.endpoint, deployment[:MAX_MODEL], Usage,
                        False, caller.parent_id)  # fmt: skip
            ticket = await self._meter.admit(caller.principal, call)
        end = self._observer.tool_started(*tool) if self._observer is not None else None
        return Step(ticket, end)

    async def end_step(
        self, step: Step, served: Served, status: int, sizes: tuple[int, int] | None = None
    ) -> None:
        """Record a ``step``: who served it (``provider`` the tool server, ``model`` the tool),
        its status, its latency from ``step`` to now, and ``sizes``: the bytes it was sent
        and the bytes it returned (the ledger's ``bytes_in``, ``bytes_out``)."""
        if step.end_span is not None:
            step.end_span(status)
        ticket = step.ticket
        if ticket is not None:
            ticket.usage = Usage()
            if sizes is not None:
                ticket.bytes_in, ticket.bytes_out = sizes
            await self._settle(self._meter.close(ticket, served, status))

    async def candidate(
        self, caller: Caller, deployment: Deployment, target: Target, request: ChatRequest
    ) -> ChatResult:
        """A call of one given target (the shadow mirror's candidate) through the same stages;
        not metered (``caller.metered`` is False), not counted against any breaker."""
        run = Run(self, caller, request, None, deployment, candidate=target)
        return (await self._complete(run, request)).result

    async def _complete(self, run: Run, request: ChatRequest) -> Answer:
        taps: list[Tap] = []
        caller = run.caller
        if self._observer is not None:
            run.watched = self._observer.begin(run)
        try:
            if run.deployment is None:
                run.deployment = self._chat.gateway.table.resolve(request.model)
            if self._pre:
                request = await self._checked(run, request)
            ctx = CallContext(caller.request_id, _client(caller))
            if run.candidate is None:
                result, run.served = await self._chat.complete(
                    run.deployment, request, ctx, caller.headers, run.watched
                )
            else:
                result, run.served = await self._chat.complete_on(
                    run.deployment, run.candidate, request, ctx, run.watched
                )
            for stage in self._whole:
                tap = stage.open(run)
                if tap is not None:
                    taps.append(tap)
                    result = tap.result(result)
            for after in self._after:
                result = await after.after(run, result)
        except BaseException as exc:
            await self._settle(self._finish(run, taps, _status_of(exc), exc))
            raise
        pending = self._finish(run, taps, 200, None)
        if pending is not None:  # a remote limiter: otherwise nothing to wait for, no coroutine
            await self._settle(pending)
        return Answer(result, run.served, run.ticket)

    async def stream(self, caller: Caller, request: ChatRequest) -> Streaming:
        """An answer whose first event has arrived. Its ``events`` must be consumed or the
        stream closed (``aclose``): the end of the stream finishes the call."""
        estimate = partial(estimate_usage, request)
        ticket = await self._ticket(caller, request.model, estimate, True)
        run = Run(self, caller, request, ticket)
        if self._observer is not None:
            run.watched = self._observer.begin(run)
        try:
            run.deployment = self._chat.gateway.table.resolve(request.model)
            if self._pre:
                request = await self._checked(run, request)
            ctx = CallContext(caller.request_id, _client(caller))
            opened = await self._chat.open(
                run.deployment, request, ctx, caller.headers, run.watched
            )
        except BaseException as exc:
            await self._settle(self._finish(run, [], _status_of(exc), exc))
            raise
        run.served, run.health = opened.served, opened.health
        taps = [tap for stage in self._stream if (tap := stage.open(run)) is not None]
        return Streaming(self, run, taps, opened)

    async def embed(self, caller: Caller, request: EmbeddingRequest) -> EmbeddingAnswer:
        """Embeddings: admitted and finished like chat; no chat stages apply."""
        estimate = partial(estimate_embedding_usage, request)
        ticket = await self._ticket(caller, request.model, estimate, False)
        served: Served | None = None
        try:
            ctx = CallContext(caller.request_id, _client(caller))
            result, served = await self._embeddings.embed(request, ctx)
            if ticket is not None:
                self._meter.observe_result(ticket, result)
        except BaseException as exc:
            if ticket is not None:
                await self._settle(self._meter.close(ticket, None, _status_of(exc)))
            raise
        if ticket is not None:
            await self._settle(self._meter.close(ticket, served, 200))
        return EmbeddingAnswer(result, served, ticket)

    async def _ticket(
        self, caller: Caller, model: str, estimate: Callable[[], Usage], stream: bool
    ) -> Ticket | None:
        if not caller.metered:
            return None
        caller.principal.may_call(model)
        if len(model) > MAX_MODEL:  # the ledger stores it (as the deployment) when unresolved
            model = model[:MAX_MODEL]
        call = Call(caller.request_id, caller.endpoint, model, estimate, stream, caller.parent_id)
        try:
            return await self._meter.admit(caller.principal, call)
        except ModelyardError as err:
            if self._observer is not None:
                self._observer.refused(caller, err)
            raise

    async def _checked(self, run: Run, request: ChatRequest) -> ChatRequest:
        """The pre-call stages, in order, on the decoded request."""
        for stage in self._pre:
            request = await stage.check(run, request)
        run.request = request
        return request

    def _finish(
        self, run: Run, taps: Sequence[Tap], status: int, error: BaseException | None
    ) -> Awaitable[None] | None:
        """Record and settle, then tell the taps, once; returns the remote settlement still to
        await (it is awaited anyway, in the background, if a tap fails)."""
        if run.finished:
            return None
        run.finished = True
        run.status, run.error = status, error
        ticket = run.ticket
        pending = self._meter.close(ticket, run.served, status) if ticket is not None else None
        try:
            for tap in taps:
                tap.end(run)
        except BaseException:
            if pending is not None:
                self._spawn(_awaited(pending))
            raise
        finally:
            if run.watched is not None:
                run.watched.finish(run)
        return pending

    async def _settle(self, pending: Awaitable[None] | None) -> None:
        """Await a remote settlement in a task a cancellation of the caller cannot stop."""
        if pending is not None:
            await self._shielded(_awaited(pending))

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        await asyncio.shield(self._spawn(work))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._ending.add(task)  # held until done; awaited at shutdown
        task.add_done_callback(self._ending.discard)
        return task

    async def _wind_down(
        self,
        run: Run,
        rest: AsyncIterator[Batch],
        taps: Sequence[Tap],
        status: int,
        error: BaseException | None,
    ) -> None:
        try:
            await close_events(rest)  # closes the upstream connection: generation stops
        finally:
            pending = self._finish(run, taps, status, error)
            if pending is not None:
                await pending

    async def end_stream(
        self,
        run: Run,
        rest: AsyncIterator[Batch],
        taps: Sequence[Tap],
        status: int,
        error: BaseException | None,
    ) -> None:
        if run.finished:
            return
        if _ended(rest):
            # The upstream's events ran out, so nothing is left to close: the finish runs here,
            # where no cancellation can cut it short (it does not wait), rather than in a task
            # of its own; only a remote settlement is awaited, shielded.
            await self._settle(self._finish(run, taps, status, error))
        else:
            await self._shielded(self._wind_down(run, rest, taps, status, error))


def _ended(events: AsyncIterator[Batch]) -> bool:
    """Whether ``events`` is an async generator that has run to its end (or was closed)."""
    return getattr(events, "ag_frame", False) is None


async def _awaited(pending: Awaitable[None]) -> None:
    await pending


@dataclass(frozen=True, slots=True)
class EmbeddingAnswer:
    result: EmbeddingResult
    served: Served
    ticket: Ticket | None


class Streaming:
    """A streamed answer under way: iterate ``batches`` (the events of one upstream read
    together) or ``events`` (one by one), not both; ``aclose`` when done with it."""

    __slots__ = (
        "_closing",
        "_opened",
        "_pipeline",
        "_steps",
        "_taps",
        "batches",
        "events",
        "run",
    )

    def __init__(self, pipeline: Pipeline, run: Run, taps: list[Tap], opened: Opened) -> None:
        self._pipeline = pipeline
        self.run = run
        self._taps = taps
        self._steps = _steps(taps)
        self._opened = opened
        self._closing = CLIENT_GONE
        self.batches: AsyncGenerator[Batch, None] = self._relay()
        self.events: AsyncGenerator[StreamEvent, None] = self._singly()

    @property
    def served(self) -> Served:
        return self._opened.served

    @property
    def ticket(self) -> Ticket | None:
        return self.run.ticket

    async def _relay(self) -> AsyncGenerator[Batch, None]:
        run, steps, opened = self.run, self._steps, self._opened
        through = _through_expanding if self._pipeline.expands else _through
        status: int | None = None
        error: BaseException | None = None
        try:
            if opened.first is not None:
                first, failed = await _passed(through, steps, opened.first)
                if first:
                    yield first
                if failed is not None:
                    raise failed
            async for arrived in opened.rest:
                batch, failed = await _passed(through, steps, arrived) if steps else (arrived, None)
                if batch:
                    yield batch  # what passed before a stage failed goes out first
                if failed is not None:
                    raise failed
            status = 200
        except _StageFailed as failed:
            cause = failed.__cause__ or failed
            status, error = _status_of(cause), cause
            raise cause from None
        except ModelyardError as err:
            status, error = err.status, err
            run.upstream_failed = True
            raise
        except Exception as exc:  # only the upstream's events get here (taps: _StageFailed)
            label = f"provider {run.served.provider!r}" if run.served else "the upstream"
            broken = unreadable(label, exc, stream_started=True)
            status, error = broken.status, broken
            run.upstream_failed = True
            raise broken from exc
        finally:
            ending = self._closing if status is None else status
            await self._pipeline.end_stream(run, opened.rest, self._taps, ending, error)

    async def _singly(self) -> AsyncGenerator[StreamEvent, None]:
        try:
            async for batch in self.batches:
                for event in batch:
                    yield event
        finally:
            await self.batches.aclose()

    async def aclose(self, status: int = CLIENT_GONE) -> None:
        """Stop the stream; a stream that did not end on its own is recorded with ``status``
        (499: the client left; 500: we failed to deliver it)."""
        self._closing = status
        await self.events.aclose()
        await self.batches.aclose()
        # A stream never iterated has run no ``finally``: finish it here.
        await self._pipeline.end_stream(self.run, self._opened.rest, self._taps, status, None)


# How the relay runs the taps: a tap that only looks (``Tap.saw``) alone, given each batch
# whole; a run of taps that may replace, hold back or refuse events (``Tap.event``) together,
# given the events one by one, each event through the run before the next.
RelayStep = Tap | tuple[Tap, ...]


def _steps(taps: Sequence[Tap]) -> tuple[RelayStep, ...]:
    """The relay's steps for ``taps``, in their order; a tap that keeps both ``Tap.saw`` and
    ``Tap.event`` is left out (it still sees the end)."""
    steps: list[RelayStep] = []
    for tap in taps:
        kind = type(tap)
        if kind.saw is not Tap.saw:
            steps.append(tap)
        elif kind.event is not Tap.event:
            if steps and isinstance(steps[-1], tuple):
                steps[-1] = (*steps[-1], tap)  # the run goes on
            else:
                steps.append((tap,))
    return tuple(steps)


async def _passed(
    through: Callable[[Sequence[Tap], StreamEvent], Passed],
    steps: Sequence[RelayStep],
    batch: Batch,
) -> tuple[Batch, _StageFailed | None]:
    """``batch`` through the steps, in order: what passed, and the failure of a stage that
    stopped it, if one did. What passed a run of taps before one of them failed still goes
    through the steps after it (as it would have, one event at a time); a failure there, on
    an earlier event, is the one that counts. A looking tap that fails stops the whole batch
    it was given."""
    out, failed = batch, None
    for step in steps:
        if isinstance(step, Tap):
            try:
                _saw(step, out)
            except _StageFailed as refused:
                return [], refused
        else:
            out, stopped = await _through_run(through, step, out)
            failed = stopped or failed
    return out, failed


def _saw(tap: Tap, batch: Batch) -> None:
    try:
        tap.saw(batch)
    except BaseException as exc:
        raise _StageFailed from exc


async def _through_run(
    through: Callable[[Sequence[Tap], StreamEvent], Passed], taps: Sequence[Tap], batch: Batch
) -> tuple[Batch, _StageFailed | None]:
    """``batch`` through a run of taps, event by event: what passed, and the failure of a tap
    that stopped it, if one did."""
    out: Batch = []
    try:
        for event in batch:
            passed = through(taps, event)
            if type(passed) is tuple:  # rare: only a tap that holds text back makes these
                # Nothing passed: a tap may owe events after a wait (``Tap.owed``).
                out += passed or await _settled(taps)
            else:
                out.append(passed)  # type: ignore[arg-type]  # not a tuple, so one event
    except _StageFailed as failed:
        return out, failed
    return out, None


class _StageFailed(Exception):
    """A tap raised: not the upstream's failure, so no breaker hears of it."""


async def _settled(taps: Sequence[Tap]) -> tuple[StreamEvent, ...]:
    """What the taps that held everything back for a wait (``Tap.owed``) give after it."""
    out: tuple[StreamEvent, ...] = ()
    try:
        for tap in taps:
            if tap.owed:
                out += await tap.settle()
    except BaseException as exc:
        raise _StageFailed from exc
    return out


def _through(taps: Sequence[Tap], event: StreamEvent) -> Passed:
    try:
        for tap in taps:
            event = tap.event(event)  # type: ignore[assignment]  # no tap here expands
    except BaseException as exc:
        raise _StageFailed from exc
    return event


def _through_expanding(taps: Sequence[Tap], event: StreamEvent) -> Passed:
    passed: Passed = event
    try:
        for tap in taps:
            passed = tap.event(passed)  # type: ignore[arg-type]  # one event until a tuple
            if type(passed) is tuple:
                return _spread(taps[taps.index(tap) + 1 :], passed)
    except BaseException as exc:
        raise _StageFailed from exc
    return passed


def _spread(taps: Sequence[Tap], events: tuple[StreamEvent, ...]) -> tuple[StreamEvent, ...]:
    """Several events from one tap, each through the taps after it."""
    out: list[StreamEvent] = []
    for event in events:
        passed: Passed = event
        for n, tap in enumerate(taps):
            passed = tap.event(passed)  # type: ignore[arg-type]  # one event until a tuple
            if type(passed) is tuple:
                out.extend(_spread(taps[n + 1 :], passed))
                break
        else:
            out.append(passed)  # type: ignore[arg-type]  # the loop ended on one event
    return tuple(out)


def _status_of(exc: BaseException | None) -> int:
    if isinstance(exc, ModelyardError):
        return exc.status
    if isinstance(exc, Exception):
        return INTERNAL
    return CLIENT_GONE  # cancelled: the client (or the server) went away


def _client(caller: Caller) -> str | None:
    return caller.principal.key_id if caller.metered else None


def result_events(result: ChatResult) -> list[StreamEvent]:
    """A whole answer as the events a stream of it would carry (for taps that only read
    events): refusal, text, tool calls, usage, finish."""
    events: list[StreamEvent] = []
    for choice in result.choices:
        message = choice.message
        if message.refusal:
            events.append(RefusalDelta(message.refusal, choice.index))
        text = message.text()
        if text:
            events.append(TextDelta(text, choice.index))
        for n, call in enumerate(message.tool_calls):
            delta = ToolCallDelta(n, call.arguments, call.id, call.name, choice.index, call.custom)
            events.append(delta)
        if choice.finish_reason is not None:
            events.append(Finished(choice.finish_reason, choice.index))
    if result.usage is not None:
        events.append(UsageReport(result.usage))
    return events
