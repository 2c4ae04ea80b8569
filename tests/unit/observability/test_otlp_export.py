"""Spans and GenAI metrics exported by OTLP (the SDK's exporters, gRPC and HTTP) to a real
receiver started here: names, parent links and the GenAI attributes of a plain call, a stream,
a failover across two targets and a limiter refusal, as the collector would get them."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from modelyard.core.errors import LimitExceeded
from modelyard.observability.tracing import otlp_pipeline
from modelyard.services.gateway import Gateway
from tests.otlp_receiver import Protocol, attributes, otlp_receiver
from tests.unit.observability.harness import Observed, _request


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_the_four_kinds_of_call_reach_the_collector(
    gateway: Gateway, protocol: Protocol
) -> None:
    with otlp_receiver(protocol) as receiver:
        processors, readers = otlp_pipeline(f"otlp_{protocol}", receiver.endpoint)
        observed = Observed(gateway, rpm=3, processors=processors, readers=readers)
        tracer = observed.tracing.tracer
        roots = []
        for model, stream in (("chat", False), ("chat", True), ("failover", False)):
            root = tracer.start_span(f"POST {model} {stream}", kind=SpanKind.SERVER)
            roots.append(root)
            with trace.use_span(root, end_on_exit=True):
                caller = observed.caller(f"r-{model}-{stream}")
                if stream:
                    streaming = await observed.pipeline.stream(caller, _request(model, True))
                    assert [event async for event in streaming.events]
                else:
                    await observed.pipeline.complete(caller, _request(model))
        refused = tracer.start_span("POST refused", kind=SpanKind.SERVER)
        with trace.use_span(refused, end_on_exit=True), pytest.raises(LimitExceeded):
            await observed.pipeline.complete(observed.caller("r-refused"), _request("chat"))
        observed.tracing.shutdown()  # flushes both pipelines
        spans = receiver.wait_for_spans(8)
    by_parent: dict[bytes, list[str]] = {}
    for span in spans:
        by_parent.setdefault(span.parent_span_id, []).append(span.name)
    ids = [root.get_span_context().span_id.to_bytes(8, "big") for root in roots]
    assert by_parent[ids[0]] == ["chat gpt-4o-mini"]
    assert by_parent[ids[1]] == ["chat gpt-4o-mini"]
    assert by_parent[ids[2]] == ["chat fail-503-noretry", "chat gpt-4o-mini"]
    refusal = next(s for s in spans if s.name == "POST refused")
    assert refusal.span_id not in by_parent  # no attempt under a refusal
    assert [e.name for e in refusal.events] == ["modelyard.limiter_refusal"]
    clients = [s for s in spans if s.name.startswith("chat ")]
    for span in clients:
        attrs = attributes(span)
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.request.model"] == span.name.removeprefix("chat ")
        if "error.type" not in attrs:
            assert attrs["gen_ai.usage.input_tokens"] > 0
            assert attrs["gen_ai.usage.output_tokens"] > 0
            assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert [attributes(s).get("error.type") for s in clients].count("UpstreamUnavailable") == 1
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= (
        receiver.metric_names
    )
