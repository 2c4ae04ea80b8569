"""The playground: one prompt (system, user, optional JSON schema, temperature, max tokens) sent
to two to four deployments at once, each answer streamed into its own column over SSE (HTMX's
SSE extension), with latency, time to first token, tokens and cost. A refusal (the model
declining, ``RefusalDelta``) streams into a labelled block of its own, apart from the answer; an
answer stopped for its content (finish reason ``content_filter``: a filter or guardrail, or a
refusal from a dialect that explains it as text) is labelled so under it. A comparison is kept (in
this process, for the signed-in user) and can be downloaded as an evaluation dataset item.

Each call goes through the request pipeline as the signed-in key (``Caller``): it is admitted,
limited, metered and billed like any API call, and a key that may not call a deployment gets
the same 403. A column is called once: a reconnecting browser gets what was already answered.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from html import escape
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from modelyard.core.chat import ChatRequest, Message, ResponseFormat, TextPart
from modelyard.core.errors import InvalidRequest, ModelyardError, NotFound
from modelyard.core.events import Finished, RefusalDelta, TextDelta, UsageReport
from modelyard.evals.datasets import parse_case
from modelyard.portal.comparisons import Column, SideBySide
from modelyard.portal.web import Ctx, page
from modelyard.services.pipeline import Caller

MAX_PROMPT = 32_000
MAX_ANSWER = 64_000  # characters of an answer kept for the page and the dataset item
# The label the first piece of a refusal carries into its block (escaped pieces follow it).
REFUSED = '<strong class="label">Refused: </strong>'


def _visible(ctx: Ctx) -> list[str]:
    allowed = ctx.user.principal.deployments
    return [
        n for n in sorted(ctx.root.current.gateway.table.names) if allowed is None or n in allowed
    ]


@page
async def playground(ctx: Ctx) -> Response:
    return ctx.render(
        "playground.html",
        deployments=_visible(ctx),
        kept=ctx.portal.comparisons.of(ctx.user.display_name),
        chosen=ctx.request.query_params.getlist("deployment"),
    )


def _number(ctx: Ctx, name: str, low: float, high: float, integer: bool = False) -> Any:
    raw = ctx.field(name)
    if not raw:
        return None
    try:
        value: float | int = int(raw) if integer else float(raw)
    except ValueError:
        value = high + 1
    if not low <= value <= high:
        raise InvalidRequest(f"{name}: {raw[:20]!r} is not a number from {low} to {high}")
    return value


def _schema(ctx: Ctx) -> dict[str, Any] | None:
    raw = ctx.field("schema")
    if not raw:
        return None
    try:
        schema = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"schema: not JSON ({exc})", param="schema") from exc
    if not isinstance(schema, dict):
        raise InvalidRequest("schema: a JSON schema is an object", param="schema")
    return schema


@page
async def compare(ctx: Ctx) -> Response:
    names = [n for n in (ctx.form.getlist("deployment") if ctx.form else []) if isinstance(n, str)]
    visible = set(_visible(ctx))
    if not 2 <= len(set(names)) <= 4 or not set(names) <= visible:
        raise InvalidRequest("deployment: choose two to four deployments you may call")
    user = ctx.field("user")
    if not user or len(user) > MAX_PROMPT or len(ctx.field("system")) > MAX_PROMPT:
        raise InvalidRequest(f"user: a prompt of 1 to {MAX_PROMPT} characters", param="user")
    comparison = SideBySide(
        secrets.token_urlsafe(12),
        ctx.user.display_name,
        ctx.field("system"),
        user,
        _schema(ctx),
        _number(ctx, "temperature", 0.0, 2.0),
        _number(ctx, "max_tokens", 1, 32_768, integer=True),
        [Column(n) for n in dict.fromkeys(names)],
    )
    ctx.portal.comparisons.add(comparison)
    return ctx.render("comparison.html", c=comparison)


@page
async def show(ctx: Ctx) -> Response:
    comparison = ctx.portal.comparisons.get(ctx.request.path_params["cid"], ctx.user.display_name)
    return ctx.render("comparison.html", c=comparison)


def _request(c: SideBySide, deployment: str) -> ChatRequest:
    messages = [Message("user", (TextPart(c.user),))]
    if c.system:
        messages.insert(0, Message("system", (TextPart(c.system),)))
    schema = None
    if c.schema is not None:
        schema = ResponseFormat("json_schema", c.schema, "answer")
    return ChatRequest(
        model=deployment,
        messages=messages,
        stream=True,
        include_usage=True,
        max_tokens=c.max_tokens,
        temperature=c.temperature,
        response_format=schema,
    )


def _frame(event: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


@page
async def stream(ctx: Ctx) -> Response:
    comparison = ctx.portal.comparisons.get(ctx.request.path_params["cid"], ctx.user.display_name)
    index = int(ctx.request.path_params["index"])
    if not 0 <= index < len(comparison.columns):
        raise NotFound(f"no column {index}")
    column = comparison.columns[index]

    async def frames() -> AsyncIterator[bytes]:
        if not column.started:
            column.started = True
            refused = False
            async for kind, chunk in _call(ctx, comparison, column, index):
                if kind == "refusal" and not refused:
                    refused = True
                    yield _frame(kind, REFUSED + escape(chunk))
                else:
                    yield _frame(kind, escape(chunk))
        else:  # a browser reconnecting: what was answered, once
            if column.text:
                yield _frame("delta", escape(column.text))
            if column.refusal:
                yield _frame("refusal", REFUSED + escape(column.refusal))
        stats = ctx.portal.env.get_template("_stats.html").render(col=column)
        yield _frame("stats", stats)
        yield _frame("done", "")

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)


async def _call(
    ctx: Ctx, c: SideBySide, column: Column, index: int
) -> AsyncIterator[tuple[str, str]]:
    """The column's answer, chunk by chunk, each as its frame's name (``delta`` for the text,
    ``refusal`` for a refusal's) and its text; its figures recorded on ``column``."""
    caller = Caller(ctx.user.principal, f"portal-{c.id}-{index}", "/portal/playground")
    pipeline, gateway = ctx.root.current.pipeline, ctx.root.current.gateway
    started = time.monotonic()
    try:
        answer = await pipeline.stream(caller, _request(c, column.deployment))
        try:
            column.served = f"{answer.served.provider}/{answer.served.model}"
            async for event in answer.events:
                if isinstance(event, TextDelta | RefusalDelta) and event.text:
                    if column.ttft_ms is None:
                        column.ttft_ms = (time.monotonic() - started) * 1000
                    yield _kept(column, event)
                elif isinstance(event, UsageReport):
                    column.usage = event.usage
                elif isinstance(event, Finished) and event.index == 0:
                    column.finish = event.reason
        finally:
            await answer.events.aclose()
        column.cost_micros = gateway.cost_of(
            answer.served.provider, answer.served.model, column.usage
        )
    except ModelyardError as exc:
        column.error = exc.message
    finally:
        column.latency_ms = (time.monotonic() - started) * 1000
        column.done = True


def _kept(column: Column, event: TextDelta | RefusalDelta) -> tuple[str, str]:
    """``event``'s piece noted on ``column`` (up to ``MAX_ANSWER``), as ``_call`` yields it."""
    if isinstance(event, RefusalDelta):
        if len(column.refusal) < MAX_ANSWER:
            column.refusal += event.text
        return "refusal", event.text
    if len(column.text) < MAX_ANSWER:
        column.text += event.text
    return "delta", event.text


@page
async def dataset_item(ctx: Ctx) -> Response:
    """The comparison as one evaluation dataset line: the chosen answer as the reference."""
    c = ctx.portal.comparisons.get(ctx.request.path_params["cid"], ctx.user.display_name)
    index = int(ctx.request.path_params["index"])
    if not 0 <= index < len(c.columns) or not c.columns[index].done:
        raise NotFound(f"no finished answer {index} in this comparison")
    item: dict[str, Any] = {"id": f"playground-{c.id}", "input": c.user}
    if c.system:
        item["system"] = c.system
    if c.schema is not None:
        item.update(grader="json_schema", schema=c.schema)
    elif c.columns[index].refusal and not c.columns[index].text:
        raise InvalidRequest(
            f"column {index}: the model refused; a refusal is no reference answer "
            "(choose a column that answered)"
        )
    else:
        item.update(grader="similarity", reference=c.columns[index].text)
    for name in ("max_tokens", "temperature"):
        if getattr(c, name) is not None:
            item[name] = getattr(c, name)
    parse_case(item, "the playground's item")  # what `modelyard eval run` will read back
    body = orjson.dumps(item) + b"\n"
    disposition = f'attachment; filename="playground-{c.id}.jsonl"'
    return Response(
        body, media_type="application/jsonl", headers={"content-disposition": disposition}
    )
