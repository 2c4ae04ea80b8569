"""The shadow mirror samples by percent and bounds its background calls per deployment."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tests.waiting import DEADLINE_S

from modelyard.core.chat import ChatRequest, ChatResult, Choice, Message, TextPart, Usage
from modelyard.core.errors import UpstreamTimeout
from modelyard.routing import BreakerSettings, Deployment, HealthBoard, Shadow, Target
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Resolved
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline, Stages
from modelyard.services.shadow import PrimaryAnswer, ShadowMirror
from modelyard.store.shadow_records import ShadowRecord
from modelyard.tenancy.keys import Principal


class SlowProvider:
    name = "cand"

    def __init__(self, fail: bool = False, refuse: str | None = None) -> None:
        self.release = asyncio.Event()
        self.calls: list[ChatRequest] = []
        self.fail = fail
        self.refuse = refuse
        self._called = asyncio.Condition()

    async def chat(self, request: ChatRequest, model: str, ctx: Any) -> ChatResult:
        async with self._called:
            self.calls.append(request)
            self._called.notify_all()
        await self.release.wait()
        if self.fail:
            raise UpstreamTimeout("candidate: no first token within 1s")
        message = Message("assistant", (TextPart("candidate says"),))
        if self.refuse is not None:  # as a structured-outputs refusal reads: no content
            message = Message("assistant", refusal=self.refuse)
        return ChatResult([Choice(0, message, "stop")], Usage(3, 2))

    async def reached(self, calls: int) -> None:
        """Return once ``calls`` calls have reached the provider."""
        async with asyncio.timeout(DEADLINE_S), self._called:
            await self._called.wait_for(lambda: len(self.calls) >= calls)


class FakeGateway:
    def __init__(self, provider: SlowProvider) -> None:
        self.providers = {"cand": provider}
        self.health = HealthBoard(BreakerSettings(), 0.3)

    def candidate(self, deployment: Deployment, target: Target) -> Resolved:
        provider: Any = self.providers[target.provider]
        return Resolved(deployment, target, provider, self.health.of(target.key))

    def cost_of(self, provider: str, model: str, usage: Usage | None) -> int | None:
        return None if usage is None else 10 * usage.total_tokens


def _pipeline(provider: SlowProvider) -> Pipeline:
    """The real pipeline (no stages, no limits) on a gateway whose one provider is ``cand``."""
    gateway: Any = FakeGateway(provider)
    meter = Meter(None, None, lambda: gateway)
    return Pipeline(ChatService(gateway), EmbeddingService(gateway), meter, Stages(), set())


def _caller(rid: str) -> Caller:
    return Caller(Principal("k"), rid, "/v1/chat/completions")


def _deployment(percent: float, max_in_flight: int = 2) -> Deployment:
    shadow = Shadow(Target("cand", "c-model", {"temperature": 0}), percent, max_in_flight)
    return Deployment("d", (Target("prim", "p-model"),), shadow=shadow)


REQUEST = ChatRequest("d", [Message("user", (TextPart("hello"),))], stream=True)
PRIMARY = PrimaryAnswer("prim", "p-model", "primary says", Usage(3, 4), 0.05)


async def test_calls_beyond_the_bound_are_skipped_and_the_rest_recorded():
    provider = SlowProvider()
    records: list[ShadowRecord] = []
    mirror = ShadowMirror(records.append)
    pipeline = _pipeline(provider)
    deployment = _deployment(100, max_in_flight=2)
    for i in range(5):
        mirror.mirror(pipeline, deployment, REQUEST, _caller(f"r{i}"), PRIMARY)
    await provider.reached(2)
    assert (len(provider.calls), mirror.skipped) == (2, 3)
    # The candidate is asked without streaming and with its own parameters.
    assert provider.calls[0].stream is False and provider.calls[0].temperature == 0
    provider.release.set()
    await mirror.aclose()
    assert [r.request_id for r in records] == ["r0", "r1"]
    assert records[0].candidate_output == "candidate says"
    assert (records[0].primary_cost_micros, records[0].candidate_cost_micros) == (70, 50)
    mirror.mirror(pipeline, deployment, REQUEST, _caller("r5"), PRIMARY)  # the bound was released
    await mirror.aclose()
    assert records[-1].request_id == "r5"


async def test_a_failing_candidate_is_recorded_with_its_error():
    provider = SlowProvider(fail=True)
    provider.release.set()
    records: list[ShadowRecord] = []
    mirror = ShadowMirror(records.append)
    mirror.mirror(_pipeline(provider), _deployment(100), REQUEST, _caller("r"), PRIMARY)
    await mirror.aclose()
    assert records[0].candidate_output is None
    assert records[0].candidate_error == "504 timeout: candidate: no first token within 1s"
    assert records[0].candidate_cost_micros is None


async def test_refusals_are_recorded_apart_from_the_text_on_both_sides():
    provider = SlowProvider(refuse="I can't help with that.")
    provider.release.set()
    records: list[ShadowRecord] = []
    mirror = ShadowMirror(records.append)
    declined = PrimaryAnswer("prim", "p-model", "", Usage(3, 4), 0.05, refusal="No.")
    mirror.mirror(_pipeline(provider), _deployment(100), REQUEST, _caller("r"), declined)
    answering = SlowProvider()
    answering.release.set()
    mirror.mirror(_pipeline(answering), _deployment(100), REQUEST, _caller("s"), PRIMARY)
    await mirror.aclose()
    refused, answered = sorted(records, key=lambda r: r.request_id)
    assert (refused.candidate_output, refused.candidate_refusal) == ("", "I can't help with that.")
    assert (refused.primary_output, refused.primary_refusal) == ("", "No.")
    assert refused.candidate_refused and refused.primary_refused
    assert answered.candidate_output == "candidate says" and answered.primary_output
    assert not answered.candidate_refused and not answered.primary_refused


def test_sampling_follows_the_percentage():
    mirror = ShadowMirror(lambda r: None, rng=random.Random(7))
    hits = sum(mirror.sampled(_deployment(25)) for _ in range(10_000))
    assert 2300 < hits < 2700
    assert not mirror.sampled(Deployment("d", (Target("p", "m"),)))
