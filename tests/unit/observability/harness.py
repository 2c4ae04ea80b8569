"""The observed pipeline under test: a fake OpenAI upstream, a gateway with a plain and a
failover deployment, and a pipeline with the observer on its seams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.observability.metrics import Metrics
from modelyard.observability.tracing import Tracing, TracingSettings
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.observed import Observation
from modelyard.services.pipeline import Caller, Pipeline, Stages
from modelyard.services.stages import default_stages
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import Scope
from modelyard.tenancy.limits_memory import MemoryLimiter
from tests.fakes import FakeOpenAI

UPSTREAM_KEY = "sk-observed-test-0123456789"
ROUTE = "/v1/chat/completions"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture
async def gateway(fake: FakeOpenAI) -> AsyncIterator[Gateway]:
    upstream = {"type": "openai", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    built = Gateway(
        settings_from_data(
            {
                "local": {"enabled": False},
                "providers": {"fake": upstream, "spare": upstream},
                "deployments": {
                    "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
                    "failover": {
                        "targets": [
                            {"provider": "fake", "model": "fail-503-noretry"},
                            {"provider": "spare", "model": "gpt-4o-mini"},
                        ]
                    },
                },
                "prices": {"fake/gpt-4o-mini": {"input": 1, "output": 2}},
            }
        ),
        None,
    )
    yield built
    await built.aclose()


class Observed:
    def __init__(
        self,
        gateway: Gateway,
        rpm: int = 1000,
        processors: Sequence[SpanProcessor] = (),
        readers: Sequence[MetricReader] = (),
        settings: TracingSettings | None = None,
    ) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = Metrics([ROUTE])
        processors = [SimpleSpanProcessor(self.spans), *processors]
        self.tracing = Tracing(settings or TracingSettings(), processors, readers)
        self.observation = Observation(self.metrics, self.tracing, [ROUTE])
        gateway.router.health.watch(self.observation.breaker_changed)
        meter = Meter(MemoryLimiter(), lambda row: None, lambda: gateway)
        base = default_stages(None)
        stages = Stages(base.pre, (self.observation.stage, *base.stream))
        self.pipeline = Pipeline(
            ChatService(gateway),
            EmbeddingService(gateway),
            meter,
            stages,
            set(),
            self.observation,
        )
        scope = Scope("key:k1", rpm=rpm, tpm=10**6)
        self.principal = Principal("k1", project_id="proj-1", scopes=(scope,))

    def caller(self, rid: str) -> Caller:
        return Caller(self.principal, rid, ROUTE)

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = self.metrics.render()[0].decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples().get((name, frozenset(labels.items())), 0.0)

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())


def _request(model: str, stream: bool = False) -> ChatRequest:
    return ChatRequest(model, [Message("user", (TextPart("hello"),))], stream=stream)
