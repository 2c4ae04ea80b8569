"""OpenTelemetry traces for the gateway, after the GenAI semantic conventions.

Followed: the GenAI conventions as published in OpenTelemetry semantic conventions 1.37 to 1.44
(``gen_ai.provider.name``, ``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.*``, ``gen_ai.response.finish_reasons``, the
``gen_ai.client.*`` metrics), the names the ``semantic-conventions-genai`` repository carries on.

One ``Tracing`` per app with its own ``TracerProvider`` and ``MeterProvider`` (never the
process-wide ones: two apps in a process stay apart). A request's server span is started by the
front middleware from the client's ``traceparent`` (W3C trace context) and made current; each
upstream attempt is a client span under it, ``chat {model}``, whose own ``traceparent`` goes to
the upstream. Nothing here is built when tracing is off, and the SDK is imported only when a
``Tracing`` or an exporter is (about 3 MB a process that does not trace need not carry); the
API (spans, context, propagation) is small and imported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

OPERATION: Final = "gen_ai.operation.name"
PROVIDER: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
TOKEN_TYPE: Final = "gen_ai.token.type"  # noqa: S105  # an attribute name
ERROR_TYPE: Final = "error.type"
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
_TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
_DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24)
_KEYLIKE: Final = re.compile(r"\b(?:sk|my|key|pk|rk|AKIA)[-_A-Za-z0-9]{12,}\b")
_PROPAGATOR: Final = TraceContextTextMapPropagator()

Redact = Callable[[str], str]


def redactor(patterns: Iterable[str]) -> Redact:
    """Key-like tokens and every match of ``patterns`` become ``[redacted]``."""
    compiled = [_KEYLIKE, *(re.compile(p) for p in patterns)]

    def redact(text: str) -> str:
        for pattern in compiled:
            text = pattern.sub("[redacted]", text)
        return text

    return redact


@dataclass(frozen=True, slots=True)
class TracingSettings:
    service_name: str = "modelyard"
    sample_ratio: float = 1.0
    capture_content: bool = False
    redact: Redact = field(default=redactor(()))


class Tracing:
    """The app's tracer and GenAI meters; ``shutdown`` flushes what is queued."""

    def __init__(
        self,
        settings: TracingSettings,
        processors: Sequence[SpanProcessor] = (),
        readers: Sequence[MetricReader] = (),
    ) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        resource = Resource.create({"service.name": settings.service_name})
        sampler = ParentBased(TraceIdRatioBased(settings.sample_ratio))
        self.provider = TracerProvider(resource=resource, sampler=sampler)
        for processor in processors:
            self.provider.add_span_processor(processor)
        self.meters = MeterProvider(metric_readers=list(readers), resource=resource)
        self.settings = settings
        self.tracer = self.provider.get_tracer("modelyard")
        meter = self.meters.get_meter("modelyard")
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
        )

    def server_span(self, name: str, headers: Sequence[tuple[bytes, bytes]]) -> tuple[Span, object]:
        """Start the request's server span (child of the client's ``traceparent``, if any) and
        make it current; give the token to ``end_server_span``."""
        carrier = {}
        for key, value in headers:
            if key in (b"traceparent", b"tracestate"):
                carrier[key.decode("latin-1")] = value.decode("latin-1")
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        span = self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def end_server_span(span: Span, token: object, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute(ERROR_TYPE, str(status))
        elif status >= 400:
            span.set_attribute(ERROR_TYPE, str(status))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]  # the token attach returned

    def client_span(self, operation: str, provider: str, model: str) -> Span:
        """One upstream attempt, under the current span (the request's server span)."""
        attributes = {OPERATION: operation, PROVIDER: provider, REQUEST_MODEL: model}
        return self.tracer.start_span(
            f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes
        )

    def tool_span(self, name: str, call_id: str, server: str) -> Span:
        """One tool execution the gateway runs (an MCP ``tools/call``), under the current span:
        the GenAI ``execute_tool {name}`` span."""
        attributes = {
            OPERATION: "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "extension",
            "mcp.method.name": "tools/call",
            "modelyard.mcp.server_label": server,
        }
        return self.tracer.start_span(
            f"execute_tool {name}", kind=SpanKind.INTERNAL, attributes=attributes
        )

    @staticmethod
    def traceparent(span: Span) -> str | None:
        """The W3C ``traceparent`` that makes the upstream's spans children of ``span``."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
        return carrier.get("traceparent")

    @staticmethod
    def current_trace_id() -> str | None:
        ctx = trace.get_current_span().get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None

    def record(
        self, attributes: Mapping[str, str], seconds: float, tokens: tuple[int, int] | None
    ) -> None:
        """The ``gen_ai.client.*`` metrics of one finished operation."""
        self.duration.record(seconds, attributes)
        if tokens is not None:
            self.token_usage.record(tokens[0], {**attributes, TOKEN_TYPE: "input"})
            self.token_usage.record(tokens[1], {**attributes, TOKEN_TYPE: "output"})

    def shutdown(self) -> None:
        self.provider.shutdown()
        self.meters.shutdown()


def otlp_pipeline(
    exporter: str, endpoint: str | None, interval_s: float = 15.0
) -> tuple[list[SpanProcessor], list[MetricReader]]:
    """Batch span processor and periodic metric reader exporting by OTLP (``otlp_grpc`` or
    ``otlp_http``); ``none``: nothing exported."""
    if exporter == "none":
        return [], []
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    spans: SpanExporter
    metrics: MetricExporter
    if exporter == "otlp_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetrics,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        spans = OTLPSpanExporter(endpoint=endpoint, insecure=_insecure(endpoint))
        metrics = GrpcMetrics(endpoint=endpoint, insecure=_insecure(endpoint))
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetrics,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpans,
        )

        base = endpoint.rstrip("/") if endpoint else None
        spans = HttpSpans(endpoint=f"{base}/v1/traces" if base else None)
        metrics = HttpMetrics(endpoint=f"{base}/v1/metrics" if base else None)
    reader = PeriodicExportingMetricReader(metrics, export_interval_millis=interval_s * 1000)
    return [BatchSpanProcessor(spans)], [reader]


def _insecure(endpoint: str | None) -> bool | None:
    return True if endpoint and endpoint.startswith("http://") else None
