"""The pipeline's observer: metrics, GenAI spans and event logs, attached once to its seams.

``Observation`` is the pipeline's ``Observer`` (admission refusals, the finish of every call)
and, through ``CallWatch``, the attempt loop's watch (one client span and one attempt
observation per upstream attempt) and a stream stage (first token, gaps between tokens, finish
reasons, usage). Built only when metrics or tracing are on; otherwise the pipeline holds None
and pays one ``is None`` test per seam.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial
from time import perf_counter
from typing import ClassVar, Final

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from modelyard.config.observability import ObservabilityConfig
from modelyard.core.chat import ChatRequest, ChatResult, Usage
from modelyard.core.errors import BudgetExceeded, LimitExceeded, ModelyardError
from modelyard.core.events import Finished, RefusalDelta, TextDelta, ToolCallDelta, UsageReport
from modelyard.observability.content import Captured, input_messages, whole_answer
from modelyard.observability.logs import (
    JsonFormatter,
    TextStamp,
    chain_of,
    current_trace_id,
    json_head,
    our_handler,
    still_ours,
)
from modelyard.observability.logs import configure_logging as configure_logs
from modelyard.observability.metrics import MULTIPROC_ENV, NONE, OTHER, Metrics, Streams
from modelyard.observability.tracing import (
    ERROR_TYPE,
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PROVIDER,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    Tracing,
    TracingSettings,
    otlp_pipeline,
    redactor,
)
from modelyard.providers.base import CallContext
from modelyard.providers.registry import genai_provider_name
from modelyard.routing.health import BreakerState
from modelyard.services.chat import Attempt, Batch, Served
from modelyard.services.gateway import Resolved
from modelyard.services.guards import Guarded
from modelyard.services.observing import log_breaker
from modelyard.services.pipeline import Caller, Run, Tap

events = logging.getLogger("modelyard.events")
__all__ = [
    "MULTIPROC_ENV",
    "OTHER",
    "CallWatch",
    "JsonFormatter",
    "Metrics",
    "Observation",
    "ObserveStage",
    "TextStamp",
    "TracedWatch",
    "Tracing",
    "chain_of",
    "configure_logs",
    "current_trace_id",
    "json_head",
    "observation_for",
    "our_handler",
    "still_ours",
]
CHAT = "chat"


def _error_type(error: BaseException) -> str:
    """A bounded name for a failure: the error's class (never its free text)."""
    return type(error).__name__ if isinstance(error, Exception) else "cancelled"


class Observation:
    """One per app; ``metrics`` and ``tracing`` are each None when off."""

    def __init__(
        self, metrics: Metrics | None, tracing: Tracing | None, routes: Iterable[str] = ()
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self.stage = ObserveStage()
        self.routes = frozenset(routes)
        # A new watch of one call (the pipeline's ``Observer.begin``): the watch class bound
        # to this observation, called without a method of ours in between.
        self.begin: Callable[[Run], CallWatch] = partial(
            CallWatch if tracing is None else TracedWatch, self
        )

    def route_of(self, path: str) -> str:
        """The route template for a path we serve, else ``other`` (a bounded label)."""
        return path if path in self.routes else OTHER

    def tool_started(self, name: str, call_id: str, server: str) -> Callable[[int], None] | None:
        """The ``execute_tool`` span of a tool the gateway runs; the returned function ends it
        with the step's status (None: traces are off)."""
        if self.tracing is None:
            return None
        span = self.tracing.tool_span(name, call_id, server)

        def end(status: int) -> None:
            if status >= 400:
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute(ERROR_TYPE, str(status))
            span.end()

        return end

    def refused(self, caller: Caller, error: ModelyardError) -> None:
        if isinstance(error, LimitExceeded | BudgetExceeded):
            kind = error.limit if error.limit in _LIMIT_KINDS else "other"
            if self.metrics is not None:
                self.metrics.refusals.labels(kind).inc()
            if self.tracing is not None:  # on the request's server span
                attributes = {"kind": kind, ERROR_TYPE: type(error).__name__}
                trace.get_current_span().add_event("modelyard.limiter_refusal", attributes)
            events.info(
                "limiter refused request %s: %s limit of %s (%s)",
                caller.request_id,
                kind,
                error.scope,
                error.code,
                extra={
                    "event": "limiter_refusal",
                    "request_id": caller.request_id,
                    "kind": kind,
                    "reason": error.code,
                },
            )

    def breaker_changed(self, target: str, state: BreakerState) -> None:
        if self.metrics is not None:
            self.metrics.breaker_changed(target, state)
        log_breaker(target, state)

    def shutdown(self) -> None:
        if self.tracing is not None:
            self.tracing.shutdown()
        if self.metrics is not None:
            self.metrics.close()


_LIMIT_KINDS = frozenset({"requests", "tokens", "daily_budget", "monthly_budget"})  # limits.py


class ObserveStage:
    """The stream stage through which the call's watch sees a streamed answer (first in
    order: it sees what the upstream sent); a whole answer it has seen as the attempt's."""

    name: ClassVar[str] = "observe"
    streams_only: ClassVar[bool] = True  # not opened on whole answers (``Pipeline._whole``)

    def open(self, run: Run) -> Tap | None:
        watch = run.watched
        return watch if run.request.stream and isinstance(watch, CallWatch) else None


class CallWatch(Tap):
    """One call as the observer follows it: one object per call. With tracing off (this
    class; ``TracedWatch`` with tracing on) it is also each attempt's ``Attempt`` (the
    attempt's facts are a start time and the target)."""

    # No ``__slots__``: the defaults are class attributes, so making a watch (once per call)
    # sets two attributes, not fifteen; the rest are set as the call goes.
    chosen: Resolved  # the current attempt's target (tracing off)
    ctx: CallContext  # ... and its context
    attempt_at: float  # ... and when it began
    first_at: float = 0.0
    last_at: float = 0.0
    chunks: int = 0
    reasons: Sequence[str] = ()
    usage: Usage | None = None
    open_attempt: _Attempt | None = None  # a stream's, open until the call ends
    failures: list[str] | None = None  # "target: error type" of failed attempts
    request: ChatRequest | None = None  # content capture on: what was sent
    captured: Captured | None = None  # ... and the streamed answer, per choice
    refused: bool = False  # the model declined (``Message.refusal``, ``RefusalDelta``)
    ok_seconds: float | None = None  # the answering attempt's duration (tracing off)

    def __init__(self, obs: Observation, run: Run) -> None:
        self.obs = obs
        self.started = perf_counter()

    def attempt(self, chosen: Resolved, ctx: CallContext) -> Attempt:
        self.chosen = chosen
        self.ctx = ctx
        self.attempt_at = perf_counter()
        return self

    def failed(self, error: BaseException) -> None:
        self.attempt_failed(self.chosen, _error_type(error), self.attempt_at)

    def answered(self, result: ChatResult | None) -> None:
        # The answering attempt's duration, recorded with the call at its finish.
        self.ok_seconds = perf_counter() - self.attempt_at
        if result is not None:  # finish reasons and timings of whole answers are the spans'
            self.usage = result.usage
            for choice in result.choices:  # a plain loop: no generator per answer
                if choice.message.refusal is not None:
                    self.refused = True

    def attempt_failed(self, chosen: Resolved, kind: str, started: float) -> None:
        if self.failures is None:
            self.failures = []
        self.failures.append(f"{chosen.target.key}: {kind}")
        metrics = self.obs.metrics
        if metrics is not None:
            metrics.attempt(chosen.target.provider, kind, perf_counter() - started)

    def saw(self, batch: Batch) -> None:
        tokens = 0
        for event in batch:
            if isinstance(event, TextDelta):
                tokens += 1
                if self.captured is not None:
                    self.captured.text(event.index, event.text)
            elif isinstance(event, ToolCallDelta):
                tokens += 1
                if self.captured is not None:
                    self.captured.tool_call(event)
            elif isinstance(event, RefusalDelta):  # the model's words too: a first token
                tokens += 1
                self.refused = True
                if self.captured is not None:
                    self.captured.refusal(event.index, event.text)
            elif isinstance(event, UsageReport):
                self.usage = event.usage
            elif isinstance(event, Finished):
                self.reasons = (*self.reasons, event.reason)
                if self.captured is not None:
                    self.captured.finished(event.index, event.reason)
        if tokens:  # the events of a batch came together (one read from the upstream)
            now = perf_counter()
            if not self.chunks:
                self.first_at = now
            self.last_at = now
            self.chunks += tokens

    def whole(self, result: ChatResult) -> None:
        """A whole answer, as its attempt got it."""
        self.first_at = self.last_at = perf_counter()
        self.usage = result.usage
        self.reasons = [c.finish_reason for c in result.choices if c.finish_reason is not None]
        for choice in result.choices:
            if choice.message.refusal is not None:
                self.refused = True

    def result(self, result: ChatResult) -> ChatResult:
        return result  # seen already, by ``whole``

    def final_usage(self, run: Run) -> Usage | None:
        """The call's usage: as the upstream reported it, else the meter's estimate."""
        ticket = run.ticket
        return self.usage or (ticket.usage if ticket is not None else None)

    def finish(self, run: Run) -> None:
        seconds = perf_counter() - self.started
        served = run.served
        if served is None:
            self._unserved(run, seconds)
            return
        ticket = run.ticket
        usage = self.usage or (ticket.usage if ticket is not None else None)  # final_usage
        if self.chunks or self.failures is not None:  # a stream, or a failover
            self._streamed_or_failed_over(run, served, usage)
        if self.refused:
            self._refusal(run, served)
        metrics = self.obs.metrics
        if metrics is None:
            return
        if run.guarded is not None:  # a policy applied
            _guard_metrics(metrics, run.guarded)
        caller = run.caller
        # The raw facts, grouped into series by the flush (``Metrics.calls``, ``CallRecord``)
        metrics.calls.append(
            (
                caller.endpoint,
                served.deployment,
                served.provider,
                served.model,
                run.status,
                caller.principal.project_id or NONE,
                seconds,
                self.ok_seconds,
                usage,
                ticket.cost_micros if ticket is not None else None,
            )
        )

    def _unserved(self, run: Run, seconds: float) -> None:
        """A call no target served (refused by a stage, no deployment, every attempt failed)."""
        metrics = self.obs.metrics
        if metrics is not None:
            if run.guarded is not None:
                _guard_metrics(metrics, run.guarded)
            metrics.call(run.caller.endpoint, _UNSERVED, run.status, seconds)

    def _streamed_or_failed_over(self, run: Run, served: Served, usage: Usage | None) -> None:
        if served.attempts > 1:
            self._failover(run, served)
        metrics = self.obs.metrics
        if metrics is not None:
            self._stream_metrics(
                metrics.streams((served.deployment, served.provider, served.model)), run, usage
            )

    def _refusal(self, run: Run, served: Served) -> None:
        """The answer was a refusal: counted by the target that answered, marked on the
        call's ``Served`` (the access line) and the request's server span, and logged
        (bounded facts, never the refusal's words)."""
        served.refused = True  # the access line's mark (this call's own ``Served``)
        obs = self.obs
        if obs.metrics is not None:
            obs.metrics.model_refusals_of(served.deployment, served.provider, served.model).inc()
        # The request's server span (current: the front's), when this call is the request's
        # own: an unmetered call (a shadow candidate, a judge) has the request's context too.
        if obs.tracing is not None and run.caller.metered:
            trace.get_current_span().set_attribute(REFUSED, True)
        events.info(
            "request %s: deployment %s answered by %s/%s with a refusal",
            run.caller.request_id,
            served.deployment,
            served.provider,
            served.model,
            extra={
                "event": "model_refusal",
                "request_id": run.caller.request_id,
                "deployment": served.deployment,
                "provider": served.provider,
                "model": served.model,
            },
        )

    def _failover(self, run: Run, served: Served) -> None:
        reason = "; ".join(self.failures or ()) or "earlier targets failed"
        events.info(
            "request %s failed over: deployment %s answered by %s/%s after %d attempts (%s)",
            run.caller.request_id,
            served.deployment,
            served.provider,
            served.model,
            served.attempts,
            reason,
            extra={
                "event": "failover",
                "request_id": run.caller.request_id,
                "deployment": served.deployment,
                "provider": served.provider,
                "attempts": served.attempts,
                "reason": reason,
            },
        )

    def _stream_metrics(self, streams: Streams, run: Run, usage: Usage | None) -> None:
        """A failover's count, and a stream's first token, token gaps and output rate."""
        if run.served is not None and run.served.attempts > 1:
            streams.failovers.pending += 1
        if not (self.chunks and run.request.stream):
            return
        streams.ttft.observe(self.first_at - self.started)
        gap = self.last_at - self.first_at
        if self.chunks > 1:
            streams.inter_token.observe(gap / (self.chunks - 1))
        if usage is not None and usage.output_tokens and gap > 0:
            streams.output_rate.observe(usage.output_tokens / gap)


class TracedWatch(CallWatch):
    """The call's watch with tracing on: each attempt is an ``_Attempt`` with its span; a
    stream's attempt span ends with the call."""

    def __init__(self, obs: Observation, run: Run) -> None:
        super().__init__(obs, run)
        tracing = obs.tracing
        if tracing is not None and tracing.settings.capture_content:
            self.request = run.request
            self.captured = Captured()

    def attempt(self, chosen: Resolved, ctx: CallContext) -> Attempt:
        return _Attempt(self, chosen, ctx)

    def finish(self, run: Run) -> None:
        if self.open_attempt is not None:
            self.open_attempt.end_stream(run, self.final_usage(run), self.reasons, self.refused)
            self.open_attempt = None
        super().finish(run)


_UNSERVED: Final = (NONE, NONE, NONE)
# A bounded mark of an answer the model declined, on its attempt's span and the request's
# server span: the GenAI conventions have no attribute for it, and its finish reason stays
# the upstream's (``stop`` for a structured-outputs refusal).
REFUSED: Final = "modelyard.response.refused"


def _guard_metrics(metrics: Metrics, guarded: object) -> None:
    """The call's guardrail verdicts (the ones its ledger row and header show) and the time
    its guards took."""
    if isinstance(guarded, Guarded):
        verdicts = guarded.verdicts
        metrics.guarded(
            guarded.policy.name,
            [(v.guard, v.phase, v.action, v.category) for v in verdicts.by_key.values()],
            verdicts.latency_ms / 1000,
        )


class _Attempt:
    """One upstream attempt with tracing on: its span, and its duration (metrics on)."""

    __slots__ = ("chosen", "ctx", "span", "started", "watch")

    def __init__(self, watch: CallWatch, chosen: Resolved, ctx: CallContext) -> None:
        self.watch = watch
        self.chosen = chosen
        self.started = perf_counter()
        tracing = watch.obs.tracing
        self.span: Span | None = None
        self.ctx = ctx
        if tracing is not None:
            genai = genai_provider_name(chosen.provider.settings.type)
            span = tracing.client_span(CHAT, genai, chosen.target.model)
            span.set_attribute("modelyard.deployment", chosen.deployment.name)
            span.set_attribute("modelyard.provider", chosen.target.provider)
            self.span = span
            if watch.request is not None:
                span.set_attribute(
                    INPUT_MESSAGES, input_messages(watch.request.messages, tracing.settings.redact)
                )
            parent = tracing.traceparent(span)
            if parent is not None:
                # Every other fact of the call kept: a field added to CallContext is not lost.
                self.ctx = replace(ctx, traceparent=parent)

    def failed(self, error: BaseException) -> None:
        kind = _error_type(error)
        self.watch.attempt_failed(self.chosen, kind, self.started)
        span = self.span
        if span is not None:
            span.set_attribute(ERROR_TYPE, kind)
            span.set_status(Status(StatusCode.ERROR, kind))
            span.end()
            self._record(kind, None)

    def answered(self, result: ChatResult | None) -> None:
        watch = self.watch
        metrics = watch.obs.metrics
        if metrics is not None:
            metrics.attempt(self.chosen.target.provider, "ok", perf_counter() - self.started)
        if result is not None:
            watch.whole(result)
        span = self.span
        if span is None:
            return
        if result is None:  # a stream: its span lasts until the call ends
            watch.open_attempt = self
            return
        reasons = [c.finish_reason for c in result.choices if c.finish_reason is not None]
        model = result.upstream_model or self.chosen.target.model
        _set_answer(span, model, result.usage, reasons)
        if watch.refused:
            span.set_attribute(REFUSED, True)
        tracing = watch.obs.tracing
        if watch.request is not None and tracing is not None and result.choices:
            span.set_attribute(OUTPUT_MESSAGES, whole_answer(result, tracing.settings.redact))
        span.end()
        usage = result.usage
        self._record(None, (usage.input_tokens, usage.output_tokens) if usage else None)

    def end_stream(
        self, run: Run, usage: Usage | None, reasons: Sequence[str], refused: bool = False
    ) -> None:
        """The streamed answer ended (well or not): its span ends with what it carried."""
        span = self.span
        if span is None:
            return
        _set_answer(span, self.chosen.target.model, usage, reasons)
        if refused:
            span.set_attribute(REFUSED, True)
        watch = self.watch
        tracing, captured = watch.obs.tracing, watch.captured
        if captured is not None and tracing is not None:
            answer = captured.messages(run.status != 200, tracing.settings.redact)
            span.set_attribute(OUTPUT_MESSAGES, answer)
        error = None
        if run.status != 200:
            error = _error_type(run.error) if run.error is not None else str(run.status)
            span.set_attribute(ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()
        self._record(error, (usage.input_tokens, usage.output_tokens) if usage else None)

    def _record(self, error: str | None, tokens: tuple[int, int] | None) -> None:
        tracing = self.watch.obs.tracing
        if tracing is None or self.span is None:
            return
        attrs = {
            OPERATION: CHAT,
            PROVIDER: genai_provider_name(self.chosen.provider.settings.type),
            REQUEST_MODEL: self.chosen.target.model,
        }
        if error is not None:
            attrs[ERROR_TYPE] = error
        tracing.record(attrs, perf_counter() - self.started, tokens)


def _set_answer(span: Span, model: str, usage: Usage | None, reasons: Sequence[str]) -> None:
    span.set_attribute(RESPONSE_MODEL, model)
    if usage is not None:
        span.set_attribute(INPUT_TOKENS, usage.input_tokens)
        span.set_attribute(OUTPUT_TOKENS, usage.output_tokens)
    if reasons:
        span.set_attribute(FINISH_REASONS, reasons)


def observation_for(
    settings: ObservabilityConfig, routes: Iterable[str], tracing: Tracing | None = None
) -> Observation | None:
    """What the config turns on (None: nothing, and nothing is built); ``tracing`` replaces
    the configured exporters (tests: an in-memory exporter)."""
    routes = frozenset(routes)
    metrics = Metrics(routes) if settings.metrics.enabled else None
    if tracing is None and settings.tracing.enabled:
        cfg = settings.tracing
        processors, readers = otlp_pipeline(cfg.exporter, cfg.endpoint)
        options = TracingSettings(
            cfg.service_name, cfg.sample_ratio, cfg.capture_content, redactor(cfg.redact)
        )
        tracing = Tracing(options, processors, readers)
    if metrics is None and tracing is None and settings.logs.format != "json":
        return None
    return Observation(metrics, tracing, routes)
