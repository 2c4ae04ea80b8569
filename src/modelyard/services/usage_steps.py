"""One request's steps from the ledger, as a tree: a response (or a Messages API answer that
ran MCP tools) and under it each model call and each tool execution, in order.

Shared by the admin API (``GET /admin/v1/usage/steps/{parent_id}``) and ``modelyard usage
--steps``. A tool step is recognised by its endpoint (``mcp_call``): its provider is
``mcp:<server label>`` and its model the tool's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from modelyard.services.admin_models import Query, Response, stamp, usd
from modelyard.store.usage import INTERRUPTED, UsageRecord

TOOL_ENDPOINT = "mcp_call"


def status_text(status: int) -> str:
    """A ledger status as people read it: ``599 interrupted`` (a request its process was
    killed while serving, ``store/journal.py``), else the number."""
    return f"{status} interrupted" if status == INTERRUPTED else str(status)


class StepsPath(Query):
    parent_id: Annotated[str, Field(min_length=1, max_length=128)]


class UsageStep(Response):
    request_id: str
    kind: Literal["model", "tool"]
    created_at: str | None
    endpoint: str
    deployment: str | None
    provider: str | None
    model: str | None
    status: int
    input_tokens: int
    output_tokens: int
    cost_micros: int | None
    cost_usd: str | None
    latency_ms: float
    bytes_in: int | None
    bytes_out: int | None

    @classmethod
    def of(cls, r: UsageRecord) -> UsageStep:
        return cls(
            request_id=r.request_id,
            kind="tool" if r.endpoint == TOOL_ENDPOINT else "model",
            created_at=stamp(r.created_at),
            endpoint=r.endpoint,
            deployment=r.deployment,
            provider=r.provider,
            model=r.model,
            status=r.status,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cost_micros=r.cost_micros,
            cost_usd=usd(r.cost_micros),
            latency_ms=r.latency_ms,
            bytes_in=r.bytes_in,
            bytes_out=r.bytes_out,
        )


class UsageSteps(Response):
    object: Literal["usage.steps"] = "usage.steps"
    parent_id: str
    model_calls: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost_micros: int
    steps: list[UsageStep]

    @classmethod
    def of(cls, parent_id: str, records: Sequence[UsageRecord]) -> UsageSteps:
        steps = [UsageStep.of(r) for r in records]
        return cls(
            parent_id=parent_id,
            model_calls=sum(s.kind == "model" for s in steps),
            tool_calls=sum(s.kind == "tool" for s in steps),
            input_tokens=sum(s.input_tokens for s in steps),
            output_tokens=sum(s.output_tokens for s in steps),
            cost_micros=sum(s.cost_micros or 0 for s in steps),
            steps=steps,
        )


def tree_lines(found: UsageSteps) -> list[str]:
    """The steps as a tree for a terminal."""
    head = (
        f"{found.parent_id}  {found.model_calls} model call(s), {found.tool_calls} tool "
        f"call(s), {found.input_tokens} in / {found.output_tokens} out tokens, "
        f"${usd(found.cost_micros) or '0'}"
    )
    lines = [head]
    for n, step in enumerate(found.steps):
        branch = "└─" if n == len(found.steps) - 1 else "├─"
        if step.kind == "tool":
            server = (step.provider or "").removeprefix("mcp:")
            what = f"tool  {server}/{step.model}"
            if step.bytes_in is not None:  # rows written before revision 0016 have none
                what += f"  {step.bytes_in} B in / {step.bytes_out} B out"
        else:
            what = f"model {step.deployment} → {step.provider}/{step.model}"
            what += f"  {step.input_tokens} in / {step.output_tokens} out"
        status = status_text(step.status)
        lines.append(f"{branch} {step.request_id}  {what}  {status}  {step.latency_ms} ms")
    return lines
