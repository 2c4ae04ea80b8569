"""The observer on the pipeline's seams, driven from services code against a fake upstream that
speaks OpenAI's wire format: the Prometheus series (parsed with the Prometheus text parser) and
the GenAI spans (the SDK's in-memory exporter) of a plain call, a stream, a failover across two
targets and a limiter refusal."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import LimitExceeded, UpstreamUnavailable
from modelyard.core.events import TextDelta
from modelyard.observability.tracing import TracingSettings, redactor
from modelyard.services.gateway import Gateway
from tests.fakes import FakeOpenAI
from tests.unit.observability.harness import ROUTE, Observed, _request


def _under_server_span(observed: Observed) -> trace.Span:
    """A stand-in for the server span the front middleware makes current."""
    return observed.tracing.tracer.start_span("POST /v1/chat/completions", kind=SpanKind.SERVER)


async def test_a_plain_call_is_counted_and_is_one_client_span_under_the_server_span(
    gateway: Gateway, fake: FakeOpenAI
) -> None:
    observed = Observed(gateway)
    server = _under_server_span(observed)
    with trace.use_span(server, end_on_exit=True):
        answer = await observed.pipeline.complete(observed.caller("r1"), _request("chat"))
    assert answer.result.choices[0].message.text()
    labels = {
        "route": ROUTE,
        "deployment": "chat",
        "provider": "fake",
        "model": "gpt-4o-mini",
        "status_class": "2xx",
    }
    assert observed.value("modelyard_requests_total", **labels) == 1
    assert observed.value("modelyard_request_duration_seconds_count", **labels) == 1
    usage = answer.result.usage
    assert usage is not None
    tokens = {"deployment": "chat", "project": "proj-1"}
    assert observed.value("modelyard_tokens_total", **tokens, kind="input") == usage.input_tokens
    assert observed.value("modelyard_tokens_total", **tokens, kind="output") == usage.output_tokens
    assert observed.value("modelyard_cost_usd_total", **tokens) > 0
    attempt = {"provider": "fake", "outcome": "ok"}
    assert observed.value("modelyard_upstream_attempt_duration_seconds_count", **attempt) == 1
    client, root = observed.finished()
    assert client.name == "chat gpt-4o-mini" and client.kind is SpanKind.CLIENT
    assert client.parent is not None and client.parent.span_id == root.context.span_id
    attrs = dict(client.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"]
    assert attrs["gen_ai.usage.input_tokens"] == usage.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert "gen_ai.input.messages" not in attrs  # content capture is off by default
    # The upstream got the client span's trace context.
    sent = fake.last_request.headers["traceparent"]
    assert sent.startswith(f"00-{client.context.trace_id:032x}-{client.context.span_id:016x}-")
    assert int(sent[-2:], 16) & 1  # sampled


async def test_a_stream_has_first_token_and_gap_series_and_a_span_to_its_end(
    gateway: Gateway,
) -> None:
    observed = Observed(gateway)
    server = _under_server_span(observed)
    with trace.use_span(server, end_on_exit=True):
        streaming = await observed.pipeline.stream(observed.caller("r2"), _request("chat", True))
        assert not observed.finished()  # the attempt's span lasts as long as the stream
        chunks = [event async for event in streaming.events]
    assert chunks
    served = {"deployment": "chat", "provider": "fake", "model": "gpt-4o-mini"}
    assert observed.value("modelyard_time_to_first_token_seconds_count", **served) == 1
    assert observed.value("modelyard_inter_token_latency_seconds_count", **served) == 1
    client, root = observed.finished()
    assert client.name == "chat gpt-4o-mini" and client.parent is not None
    assert client.parent.span_id == root.context.span_id
    attrs = dict(client.attributes or {})
    assert attrs["gen_ai.usage.output_tokens"] > 0  # type: ignore[operator]
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert client.status.status_code is not StatusCode.ERROR


async def test_a_failover_is_two_client_spans_the_first_failed(gateway: Gateway) -> None:
    observed = Observed(gateway)
    server = _under_server_span(observed)
    with trace.use_span(server, end_on_exit=True):
        answer = await observed.pipeline.complete(observed.caller("r3"), _request("failover"))
    assert answer.served.attempts == 2
    failed, ok, root = observed.finished()
    assert failed.name == "chat fail-503-noretry" and ok.name == "chat gpt-4o-mini"
    for span in (failed, ok):
        assert span.parent is not None and span.parent.span_id == root.context.span_id
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == UpstreamUnavailable.__name__
    assert "error.type" not in dict(ok.attributes or {})
    assert observed.value("modelyard_failovers_total", deployment="failover") == 1
    failed_attempts = {"provider": "fake", "outcome": UpstreamUnavailable.__name__}
    assert observed.value("modelyard_upstream_attempt_duration_seconds_count", **failed_attempts)


async def test_a_limiter_refusal_is_counted_by_kind_and_calls_no_upstream(
    gateway: Gateway, fake: FakeOpenAI
) -> None:
    observed = Observed(gateway, rpm=1)
    await observed.pipeline.complete(observed.caller("r4"), _request("chat"))
    before = len(fake.requests)
    observed.spans.clear()
    server = _under_server_span(observed)
    with trace.use_span(server, end_on_exit=True), pytest.raises(LimitExceeded):
        await observed.pipeline.complete(observed.caller("r5"), _request("chat"))
    assert len(fake.requests) == before
    assert observed.value("modelyard_limiter_refusals_total", kind="requests") == 1
    (refused,) = observed.finished()  # the server span alone: no attempt was made
    assert refused.name == "POST /v1/chat/completions"
    (event,) = refused.events
    assert event.name == "modelyard.limiter_refusal"
    assert dict(event.attributes or {}) == {"kind": "requests", "error.type": "LimitExceeded"}


async def test_an_opened_breaker_is_a_gauge_and_a_transition(gateway: Gateway) -> None:
    observed = Observed(gateway)
    for n in range(6):  # five failures in a row open the first target's breaker
        await observed.pipeline.complete(observed.caller(f"b{n}"), _request("failover"))
    assert observed.value("modelyard_breaker_state", target="fake/fail-503-noretry") == 2
    assert observed.value(
        "modelyard_breaker_transitions_total", target="fake/fail-503-noretry", to="open"
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_content_is_captured_only_when_asked_and_redacted(
    gateway: Gateway, stream: bool
) -> None:
    settings = TracingSettings(capture_content=True, redact=redactor([r"secret-\w+"]))
    observed = Observed(gateway, settings=settings)
    text = "hello secret-abc and sk-abcdefghijklmnopqrst"
    request = ChatRequest("chat", [Message("user", (TextPart(text),))], stream=stream)
    if stream:
        streaming = await observed.pipeline.stream(observed.caller("c1"), request)
        answer = "".join([e.text async for e in streaming.events if isinstance(e, TextDelta)])
    else:
        done = await observed.pipeline.complete(observed.caller("c1"), request)
        answer = done.result.choices[0].message.text()
    (client,) = observed.finished()
    attrs = dict(client.attributes or {})
    sent = json.loads(str(attrs["gen_ai.input.messages"]))
    assert sent == [
        {"role": "user", "parts": [{"type": "text", "content": "hello [redacted] and [redacted]"}]}
    ]
    got = json.loads(str(attrs["gen_ai.output.messages"]))
    assert "secret-abc" in answer  # the fake upstream echoes: the answer is redacted too
    redacted = answer.replace("secret-abc", "[redacted]").replace(
        "sk-abcdefghijklmnopqrst", "[redacted]"
    )
    part = {"type": "text", "content": redacted}
    assert got == [{"role": "assistant", "parts": [part], "finish_reason": "stop"}]
