"""The pipeline's observer: metrics, GenAI spans and event logs, attached once to its seams.

``Observation`` is the pipeline's ``Observer`` (admission refusals, the finish of every call)
and, through ``CallWatch``, the attempt loop's watch (one client span and one attempt
observation per upstream attempt) and a stream stage (first token, gaps between tokens, finish
reasons, usage). Built only when metrics or tracing are on; otherwise the pipeline holds None
and pays one ``is None`` test per seam.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import ClassVar, Final

import orjson
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from modelyard.config.observability import ObservabilityConfig
from modelyard.core.chat import ChatResult, Message, TextPart, Usage
from modelyard.core.errors import BudgetExceeded, LimitExceeded, ModelyardError
from modelyard.core.events import Finished, StreamEvent, TextDelta, ToolCallDelta, UsageReport
from modelyard.observability.logs import configure_logging as configure_logs
from modelyard.observability.metrics import MULTIPROC_ENV, NONE, OTHER, Metrics, status_class
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
    Redact,
    Tracing,
    TracingSettings,
    otlp_pipeline,
    redactor,
)
from modelyard.providers.base import CallContext
from modelyard.providers.registry import genai_provider_name
from modelyard.routing.health import BreakerState
from modelyard.services.chat import Attempt, AttemptWatch
from modelyard.services.gateway import Resolved
from modelyard.services.pipeline import Caller, Run, Tap

events = logging.getLogger("modelyard.events")
LOG_FORMAT_ENV = "MODELYARD_LOG_FORMAT"  # serve's choice, for the workers it spawns
LOG_LEVEL_ENV = "MODELYARD_LOG_LEVEL"
__all__ = [
    "LOG_FORMAT_ENV",
    "LOG_LEVEL_ENV",
    "MULTIPROC_ENV",
    "OTHER",
    "CallWatch",
    "Observation",
    "ObserveStage",
    "configure_logs",
    "observation_for",
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

    def route_of(self, path: str) -> str:
        """The route template for a path we serve, else ``other`` (a bounded label)."""
        return path if path in self.routes else OTHER

    def begin(self, run: Run) -> AttemptWatch:
        return CallWatch(self, run)

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

    def finished(self, run: Run) -> None:
        watch = run.watched
        if isinstance(watch, CallWatch):
            watch.finish(run)

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


def log_breaker(target: str, state: BreakerState) -> None:
    """A breaker's state change, logged once, with why it happens."""
    level = logging.WARNING if state == "open" else logging.INFO
    events.log(
        level,
        "breaker of %s is now %s (%s)",
        target,
        state,
        _BREAKER_REASONS[state],
        extra={"event": "breaker", "target": target, "state": state},
    )


_BREAKER_REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "open": "too many failures: requests skip this target until the cool-down ends",
        "half_open": "cool-down over: one probe request may go through",
        "closed": "a request succeeded: the target is healthy again",
    }
)


class ObserveStage:
    """The stream stage through which the call's watch sees the answer (first in order: it
    sees what the upstream sent)."""

    name: ClassVar[str] = "observe"

    def open(self, run: Run) -> Tap | None:
        watch = run.watched
        return watch if isinstance(watch, CallWatch) else None


class CallWatch(Tap):
    """One call as the observer follows it."""

    __slots__ = (
        "chunks",
        "failures",
        "first_at",
        "last_at",
        "obs",
        "open_attempt",
        "reasons",
        "request",
        "started",
        "text",
        "usage",
    )

    def __init__(self, obs: Observation, run: Run) -> None:
        self.obs = obs
        self.started = time.perf_counter()
        self.first_at = 0.0
        self.last_at = 0.0
        self.chunks = 0
        self.reasons: list[str] = []
        self.usage: Usage | None = None
        self.open_attempt: _Attempt | None = None  # a stream's, open until the call ends
        self.failures: list[str] = []  # "target: error type" of failed attempts
        tracing = obs.tracing
        capture = tracing is not None and tracing.settings.capture_content
        self.request = run.request if capture else None  # content capture on: what was sent
        self.text: list[str] | None = [] if capture else None  # ... and the streamed answer

    def attempt(self, chosen: Resolved, ctx: CallContext) -> Attempt:
        return _Attempt(self, chosen, ctx)

    def event(self, event: StreamEvent) -> StreamEvent:
        if isinstance(event, TextDelta | ToolCallDelta):
            now = time.perf_counter()
            if not self.chunks:
                self.first_at = now
            self.last_at = now
            self.chunks += 1
            if self.text is not None and isinstance(event, TextDelta) and event.index == 0:
                self.text.append(event.text)
        elif isinstance(event, UsageReport):
            self.usage = event.usage
        elif isinstance(event, Finished):
            self.reasons.append(event.reason)
        return event

    def result(self, result: ChatResult) -> ChatResult:
        self.first_at = self.last_at = time.perf_counter()
        self.usage = result.usage
        self.reasons = [c.finish_reason for c in result.choices if c.finish_reason is not None]
        return result

    def finish(self, run: Run) -> None:
        now = time.perf_counter()
        served = run.served
        usage = self.usage or (run.ticket.usage if run.ticket is not None else None)
        if self.open_attempt is not None:
            self.open_attempt.end_stream(run, usage, self.reasons)
            self.open_attempt = None
        if served is not None and served.attempts > 1:
            reason = "; ".join(self.failures) or "earlier targets failed"
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
        metrics = self.obs.metrics
        if metrics is not None:
            self._metrics(metrics, run, usage, now)

    def _metrics(self, metrics: Metrics, run: Run, usage: Usage | None, now: float) -> None:
        served = run.served
        deployment = served.deployment if served is not None else NONE
        provider = served.provider if served is not None else NONE
        model = served.model if served is not None else NONE
        route = metrics.route_of(run.caller.endpoint)
        metrics.call(
            (route, deployment, provider, model, status_class(run.status)), now - self.started
        )
        if served is None:
            return
        if served.attempts > 1:
            metrics.failovers_of(deployment).inc()
        if self.chunks and run.streamed:
            metrics.ttft_of(deployment, provider, model).observe(self.first_at - self.started)
            gap = self.last_at - self.first_at
            if self.chunks > 1:
                metrics.inter_token_of(deployment, provider, model).observe(gap / (self.chunks - 1))
            if usage is not None and usage.output_tokens and gap > 0:
                metrics.output_rate_of(deployment, provider, model).observe(
                    usage.output_tokens / gap
                )
        project = run.caller.principal.project_id or NONE
        if usage is not None:
            for kind, count in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
                ("cached", usage.cached_input_tokens),
                ("reasoning", usage.reasoning_tokens),
            ):
                if count:
                    metrics.tokens_of(deployment, project, kind).inc(count)
        ticket = run.ticket
        if ticket is not None and ticket.cost_micros:
            metrics.cost_of(deployment, project).inc(ticket.cost_micros / 1_000_000)


class _Attempt:
    """One upstream attempt: its span (tracing on) and its duration (metrics on)."""

    __slots__ = ("_ctx", "chosen", "provider", "span", "started", "watch")

    def __init__(self, watch: CallWatch, chosen: Resolved, ctx: CallContext) -> None:
        self.watch = watch
        self.chosen = chosen
        self.provider = chosen.provider.name
        self.started = time.perf_counter()
        tracing = watch.obs.tracing
        self.span: Span | None = None
        self._ctx = ctx
        if tracing is not None:
            genai = genai_provider_name(chosen.provider.settings.type)
            span = tracing.client_span(CHAT, genai, chosen.target.model)
            span.set_attribute("modelyard.deployment", chosen.deployment.name)
            span.set_attribute("modelyard.provider", self.provider)
            self.span = span
            if watch.request is not None:
                span.set_attribute(
                    INPUT_MESSAGES, _messages(watch.request.messages, tracing.settings.redact)
                )
            parent = tracing.traceparent(span)
            if parent is not None:
                self._ctx = CallContext(ctx.request_id, ctx.client_id, ctx.timeouts, parent)

    @property
    def ctx(self) -> CallContext:
        return self._ctx

    def failed(self, error: BaseException) -> None:
        kind = _error_type(error)
        self.watch.failures.append(f"{self.chosen.target.key}: {kind}")
        metrics = self.watch.obs.metrics
        if metrics is not None:
            seconds = time.perf_counter() - self.started
            metrics.attempts_of(self.provider, kind).observe(seconds)
        span = self.span
        if span is not None:
            span.set_attribute(ERROR_TYPE, kind)
            span.set_status(Status(StatusCode.ERROR, kind))
            span.end()
            self._record(kind, None)

    def answered(self, result: ChatResult | None) -> None:
        metrics = self.watch.obs.metrics
        if metrics is not None:
            seconds = time.perf_counter() - self.started
            metrics.attempts_of(self.provider, "ok").observe(seconds)
        span = self.span
        if span is None:
            return
        if result is None:  # a stream: its span lasts until the call ends
            self.watch.open_attempt = self
            return
        reasons = [c.finish_reason for c in result.choices if c.finish_reason is not None]
        model = result.upstream_model or self.chosen.target.model
        _set_answer(span, model, result.usage, reasons)
        tracing = self.watch.obs.tracing
        if self.watch.request is not None and tracing is not None and result.choices:
            answer = [Message("assistant", (TextPart(result.choices[0].message.text()),))]
            span.set_attribute(OUTPUT_MESSAGES, _messages(answer, tracing.settings.redact))
        span.end()
        usage = result.usage
        self._record(None, (usage.input_tokens, usage.output_tokens) if usage else None)

    def end_stream(self, run: Run, usage: Usage | None, reasons: list[str]) -> None:
        """The streamed answer ended (well or not): its span ends with what it carried."""
        span = self.span
        if span is None:
            return
        _set_answer(span, self.chosen.target.model, usage, reasons)
        tracing, text = self.watch.obs.tracing, self.watch.text
        if text is not None and tracing is not None:
            answer = [Message("assistant", (TextPart("".join(text)),))]
            span.set_attribute(OUTPUT_MESSAGES, _messages(answer, tracing.settings.redact))
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
        tracing.record(attrs, time.perf_counter() - self.started, tokens)


def _messages(messages: Sequence[Message], redact: Redact) -> str:
    """Messages as the GenAI conventions record them (role and text parts), redacted."""
    return orjson.dumps(
        [
            {"role": m.role, "parts": [{"type": "text", "content": redact(m.text())}]}
            for m in messages
        ]
    ).decode()


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
