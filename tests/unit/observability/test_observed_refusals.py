"""A refusal as the observer sees it, driven through the pipeline against the fake OpenAI
upstream (which refuses a prompt asking it to): the attempt and server spans marked, the
refusals counted by the target that answered, the refusal's words recorded only with content
capture on, and a stream that carried nothing but a refusal timed to its first token."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.events import RefusalDelta
from modelyard.observability.tracing import TracingSettings, redactor
from modelyard.services.gateway import Gateway
from modelyard.services.observed import REFUSED
from modelyard.services.pipeline import Caller
from tests.fakes.openai_chat import REFUSAL
from tests.unit.observability.harness import Observed, _request

SERVED = {"deployment": "chat", "provider": "fake", "model": "gpt-4o-mini"}


def _refuse(stream: bool) -> ChatRequest:
    return ChatRequest("chat", [Message("user", (TextPart("please refuse this"),))], stream=stream)


async def _call(
    observed: Observed, request: ChatRequest, rid: str, caller: Caller | None = None
) -> str:
    """The call under a server span; what the model refused with."""
    caller = caller or observed.caller(rid)
    server = observed.tracing.tracer.start_span("POST /v1/chat/completions", kind=SpanKind.SERVER)
    with trace.use_span(server, end_on_exit=True):
        if request.stream:
            streaming = await observed.pipeline.stream(caller, request)
            events = [e async for e in streaming.events]
            refusal = "".join(e.text for e in events if isinstance(e, RefusalDelta))
            assert streaming.served.refused is bool(refusal)  # the access line's mark
            return refusal
        done = await observed.pipeline.complete(caller, request)
        assert done.served.refused is bool(done.result.choices[0].message.refusal)
        return done.result.choices[0].message.refusal or ""


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refusal_marks_both_spans_and_is_counted(
    gateway: Gateway, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    observed = Observed(gateway)
    with caplog.at_level(logging.INFO, "modelyard.events"):
        refused = await _call(observed, _refuse(stream), "r1")
    assert refused == REFUSAL
    client, server = observed.finished()
    attrs = dict(client.attributes or {})
    assert attrs[REFUSED] is True
    # The finish reason stays the upstream's: an OpenAI refusal ends with ``stop``.
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert "gen_ai.output.messages" not in attrs  # no words without content capture
    assert dict(server.attributes or {})[REFUSED] is True
    assert observed.value("modelyard_model_refusals_total", **SERVED) == 1
    (line,) = [r for r in caplog.records if getattr(r, "event", None) == "model_refusal"]
    assert line.__dict__["request_id"] == "r1" and line.__dict__["deployment"] == "chat"
    assert REFUSAL not in line.getMessage()


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_is_not_marked(gateway: Gateway, stream: bool) -> None:
    observed = Observed(gateway)
    await _call(observed, _request("chat", stream), "a1")
    client, server = observed.finished()
    assert REFUSED not in dict(client.attributes or {})
    assert REFUSED not in dict(server.attributes or {})
    assert observed.value("modelyard_model_refusals_total", **SERVED) == 0


async def test_an_unmetered_calls_refusal_leaves_the_requests_span_alone(gateway: Gateway) -> None:
    """A shadow candidate or a judge runs in the request's context: its refusal is its own
    attempt's, not the answer the client got."""
    observed = Observed(gateway)
    shadow = Caller(observed.principal, "s1-shadow", "shadow", "s1", metered=False)
    assert await _call(observed, _refuse(False), "s1", shadow) == REFUSAL
    client, server = observed.finished()
    assert dict(client.attributes or {})[REFUSED] is True
    assert REFUSED not in dict(server.attributes or {})


async def test_a_refusal_only_stream_has_a_first_token(gateway: Gateway) -> None:
    observed = Observed(gateway)
    await _call(observed, _refuse(True), "t1")
    assert observed.value("modelyard_time_to_first_token_seconds_count", **SERVED) == 1
    assert observed.value("modelyard_inter_token_latency_seconds_count", **SERVED) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_captured_content_records_the_refusal_as_its_own_part(
    gateway: Gateway, stream: bool
) -> None:
    settings = TracingSettings(capture_content=True, redact=redactor([r"help"]))
    observed = Observed(gateway, settings=settings)
    await _call(observed, _refuse(stream), "c1")
    client, _ = observed.finished()
    got = json.loads(str(dict(client.attributes or {})["gen_ai.output.messages"]))
    redacted = REFUSAL.replace("help", "[redacted]")
    refusal = {"type": "refusal", "content": redacted}
    assert got == [{"role": "assistant", "parts": [refusal], "finish_reason": "stop"}]
