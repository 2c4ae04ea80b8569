"""A real OTLP receiver for tests: the collector's protocol (``opentelemetry-proto``) over gRPC
or HTTP/protobuf on loopback, keeping every span and metric it is sent.

    with otlp_receiver("grpc") as receiver:
        ... export to receiver.endpoint ...
        spans = receiver.wait_for_spans(3)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.waiting import wait_until

Protocol = Literal["grpc", "http"]


@dataclass
class Received:
    """What the receiver was sent, in arrival order (guarded: exporters call from threads)."""

    spans: list[Span] = field(default_factory=list)
    metric_names: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    endpoint: str = ""

    def add_traces(self, request: trace_pb.ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)

    def add_metrics(self, request: metrics_pb.ExportMetricsServiceRequest) -> None:
        with self.lock:
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    self.metric_names.update(m.name for m in scope.metrics)

    def wait_for_spans(self, count: int) -> list[Span]:
        def enough() -> list[Span] | None:
            with self.lock:
                return list(self.spans) if len(self.spans) >= count else None

        return wait_until(enough, f"{count} spans at the OTLP receiver")


def attributes(span: Span) -> dict[str, Any]:
    """A span's attributes as plain Python values."""
    return {a.key: _value(a.value) for a in span.attributes}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class _Traces(trace_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(  # the generated service's method name
        self, request: trace_pb.ExportTraceServiceRequest, context: Any
    ) -> trace_pb.ExportTraceServiceResponse:
        self.received.add_traces(request)
        return trace_pb.ExportTraceServiceResponse()


class _Metrics(metrics_grpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(
        self, request: metrics_pb.ExportMetricsServiceRequest, context: Any
    ) -> metrics_pb.ExportMetricsServiceResponse:
        self.received.add_metrics(request)
        return metrics_pb.ExportMetricsServiceResponse()


@contextlib.contextmanager
def otlp_receiver(protocol: Protocol) -> Iterator[Received]:
    received = Received()
    if protocol == "grpc":
        server = grpc.server(ThreadPoolExecutor(max_workers=2))
        trace_grpc.add_TraceServiceServicer_to_server(_Traces(received), server)  # type: ignore[no-untyped-call]  # generated, untyped
        metrics_grpc.add_MetricsServiceServicer_to_server(_Metrics(received), server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        received.endpoint = f"http://127.0.0.1:{port}"
        try:
            yield received
        finally:
            server.stop(0)
        return
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(received))
    # socketserver notices a shutdown only at its next poll, every 0.5 s by default.
    thread = threading.Thread(target=http.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    received.endpoint = f"http://127.0.0.1:{http.server_address[1]}"
    try:
        yield received
    finally:
        http.shutdown()
        http.server_close()


def _handler(received: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            answer: bytes
            if self.path == "/v1/traces":
                traces = trace_pb.ExportTraceServiceRequest()
                traces.ParseFromString(body)
                received.add_traces(traces)
                answer = trace_pb.ExportTraceServiceResponse().SerializeToString()
            elif self.path == "/v1/metrics":
                metrics = metrics_pb.ExportMetricsServiceRequest()
                metrics.ParseFromString(body)
                received.add_metrics(metrics)
                answer = metrics_pb.ExportMetricsServiceResponse().SerializeToString()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test's output is not the receiver's access log."""

    return Handler
