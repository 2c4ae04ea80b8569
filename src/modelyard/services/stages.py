"""The built-in stream stages, in the order they run: health, usage, shadow.

Post-call guards come after them (``default_stages``), so what metering counts and what the
shadow candidate is compared with is the upstream's own answer, before any guard rewrites it.
"""

from __future__ import annotations

import time
from typing import ClassVar

from modelyard.core.chat import ChatResult, Usage
from modelyard.core.events import RefusalDelta, TextDelta, ToolCallDelta, UsageReport
from modelyard.routing import Deployment
from modelyard.services.chat import Batch
from modelyard.services.metering import Ticket
from modelyard.services.pipeline import PreStage, Run, Stages, StreamStage, Tap
from modelyard.services.shadow import PrimaryAnswer, ShadowMirror, result_refusal, result_text

# The events that carry the answer's first token.
TOKENS = (TextDelta, ToolCallDelta, RefusalDelta)


class HealthStage:
    """A stream that fails after its first event counts against its target's breaker (before
    it, the attempt loop counts)."""

    name: ClassVar[str] = "health"

    def open(self, run: Run) -> Tap | None:
        return _HealthTap() if run.health is not None else None


class _HealthTap(Tap):
    __slots__ = ()

    def end(self, run: Run) -> None:
        if run.upstream_failed and run.health is not None:
            run.health.failure()


class UsageStage:
    """Notes the answer's usage, first token and length on the call's ticket, for the finish."""

    name: ClassVar[str] = "usage"

    def open(self, run: Run) -> Tap | None:
        return _UsageTap(run.ticket) if run.ticket is not None else None


class _UsageTap(Tap):
    __slots__ = ("ticket",)

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket

    def saw(self, batch: Batch) -> None:
        ticket = self.ticket
        for event in batch:
            if isinstance(event, TextDelta):
                ticket.output_chars += len(event.text)
            elif isinstance(event, UsageReport):
                ticket.usage = event.usage
            elif isinstance(event, RefusalDelta):  # its tokens are output tokens too
                ticket.output_chars += len(event.text)
        if ticket.first_token_at is None and any(isinstance(e, TOKENS) for e in batch):
            ticket.first_token_at = time.perf_counter()  # the batch's events came together

    def result(self, result: ChatResult) -> ChatResult:
        ticket = self.ticket
        ticket.usage = result.usage
        if result.usage is None:
            ticket.output_chars = sum(
                len(c.message.text()) + len(c.message.refusal or "") for c in result.choices
            )
        return result


class ShadowStage:
    """A sampled call's answer, once it has ended well, goes to the shadow mirror, which calls
    the deployment's candidate in the background (through the pipeline, unmetered)."""

    name: ClassVar[str] = "shadow"

    def __init__(self, mirror: ShadowMirror) -> None:
        self.mirror = mirror

    def open(self, run: Run) -> Tap | None:
        deployment = run.deployment
        if run.candidate is not None or deployment is None or deployment.shadow is None:
            return None  # a candidate's own call is never mirrored
        if not self.mirror.sampled(deployment):
            return None
        return _ShadowTap(self.mirror, deployment)


class _ShadowTap(Tap):
    __slots__ = ("calls", "deployment", "mirror", "refused", "started", "text", "usage")

    def __init__(self, mirror: ShadowMirror, deployment: Deployment) -> None:
        self.mirror = mirror
        self.deployment = deployment
        self.started = time.perf_counter()
        self.text: list[str] = []
        self.refused: list[str] = []  # a refusal, recorded apart from the text
        self.calls: dict[int, list[str]] = {}
        self.usage: Usage | None = None

    def saw(self, batch: Batch) -> None:
        for event in batch:
            if isinstance(event, TextDelta) and event.index == 0:
                self.text.append(event.text)
            elif isinstance(event, ToolCallDelta) and event.index == 0:
                call = self.calls.setdefault(event.call_index, ["", ""])
                call[0] += event.name or ""
                call[1] += event.arguments
            elif isinstance(event, UsageReport):
                self.usage = event.usage
            elif isinstance(event, RefusalDelta) and event.index == 0:
                self.refused.append(event.text)

    def result(self, result: ChatResult) -> ChatResult:
        self.text.append(result_text(result))
        refusal = result_refusal(result)
        if refusal is not None:
            self.refused.append(refusal)
        self.usage = result.usage
        return result

    def end(self, run: Run) -> None:
        if run.status != 200 or run.served is None:
            return
        lines = ["".join(self.text), *(f"{name}({args})" for name, args in self.calls.values())]
        served = run.served
        answer = PrimaryAnswer(
            served.provider,
            served.model,
            "\n".join(x for x in lines if x),
            self.usage,
            time.perf_counter() - self.started,
            "".join(self.refused) if self.refused else None,
        )
        self.mirror.mirror(run.pipeline, self.deployment, run.request, run.caller, answer)


def default_stages(
    mirror: ShadowMirror | None,
    pre: tuple[PreStage, ...] = (),
    guards: tuple[StreamStage, ...] = (),
) -> Stages:
    """Health, usage, shadow (when the server records shadows), then the post-call guards."""
    stream: list[StreamStage] = [HealthStage(), UsageStage()]
    if mirror is not None:
        stream.append(ShadowStage(mirror))
    return Stages(pre, (*stream, *guards))
