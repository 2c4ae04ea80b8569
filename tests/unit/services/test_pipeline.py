"""The request pipeline driven from services code, against a fake upstream that speaks
OpenAI's wire format: steps metered under one parent, stages plugged in by registration, and
a finish that a cancellation cannot interrupt."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import anyio
import pytest
from tests.fakes import FakeOpenAI
from tests.redis_server import running_redis

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.events import StreamEvent, TextDelta, UsageReport
from modelyard.services.chat import ChatService, Served
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline, Run, Stages, Tap
from modelyard.services.stages import HealthStage, UsageStage, default_stages
from modelyard.store import open_store
from modelyard.store.usage import LedgerRow, UsageLedger, UsageRecord
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import Limiter, Reservation, Scope
from modelyard.tenancy.limits_memory import MemoryLimiter
from modelyard.tenancy.limits_redis import RedisLimiter
from modelyard.tenancy.model import UsageFilter

UPSTREAM_KEY = "sk-pipeline-test-0123456789"
PRINCIPAL = Principal(
    "key000000001", project_id="p1", scopes=(Scope("key:key000000001", rpm=1000, tpm=10**6),)
)

FIELDS = tuple(UsageRecord.__dataclass_fields__)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url


@pytest.fixture
async def gateway(fake: FakeOpenAI) -> AsyncIterator[Gateway]:
    upstream = {"type": "openai_compatible", "base_url": fake.base_url, "api_key": UPSTREAM_KEY}
    once = {"attempts": 1}
    built = Gateway(
        settings_from_data(
            {
                "local": {"enabled": False},
                "providers": {"fake": upstream},
                "deployments": {
                    "chat": {"targets": [{"provider": "fake", "model": "gpt-4o-mini"}]},
                    # one frame, then 10 s of silence: a stream the test abandons midway
                    "trickle": {
                        "targets": [{"provider": "fake", "model": "trickle-10000"}],
                        "retry": once,
                    },
                },
            }
        ),
        None,
    )
    yield built
    await built.aclose()


def _request(model: str = "chat", stream: bool = False) -> ChatRequest:
    return ChatRequest(model, [Message("user", (TextPart("hello"),))], stream=stream)


def _pipeline(
    gateway: Gateway,
    limiter: Limiter,
    rows: list[LedgerRow],
    stages: Stages | None = None,
) -> tuple[Pipeline, set[asyncio.Task[None]]]:
    ending: set[asyncio.Task[None]] = set()
    meter = Meter(limiter, rows.append, lambda: gateway)
    chat, embeddings = ChatService(gateway), EmbeddingService(gateway)
    return Pipeline(chat, embeddings, meter, stages or default_stages(None), ending), ending


async def test_three_steps_are_three_rows_linked_to_their_parent(
    gateway: Gateway, fake: FakeOpenAI, tmp_path: Path
) -> None:
    rows: list[LedgerRow] = []
    pipeline, _ = _pipeline(gateway, MemoryLimiter(), rows)
    parent = Caller(PRINCIPAL, "req-agent", "/v1/responses")
    for n in (1, 2, 3):
        answer = await pipeline.complete(parent.step(n), _request())
        assert answer.result.choices[0].message.text()
    assert len(fake.requests) == 3
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        async with store.transaction() as session:
            await UsageLedger(session).append(rows)
        async with store.transaction() as session:
            back = await UsageLedger(session).records(UsageFilter(project_id="p1"))
    finally:
        await store.aclose()
    assert [(r.request_id, r.parent_id, r.status, r.endpoint) for r in back] == [
        (f"req-agent.{n}", "req-agent", 200, "/v1/responses") for n in (1, 2, 3)
    ]
    assert all(r.input_tokens > 0 and r.usage_reported for r in back)


class _Seen(Tap):
    __slots__ = ("log", "name")

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def event(self, event: StreamEvent) -> StreamEvent:
        if isinstance(event, TextDelta):
            self.log.append(f"{self.name}:{event.text.strip()}")
            return TextDelta(event.text.upper(), event.index)
        if isinstance(event, UsageReport):
            self.log.append(f"{self.name}:usage")
        return event

    def end(self, run: Run) -> None:
        self.log.append(f"{self.name}:end {run.status}")


class _SeenStage:
    """A stage written for streams only: ``event`` and ``end``, nothing else."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def open(self, run: Run) -> Tap | None:
        return _Seen(self.name, self.log)


async def test_a_registered_stage_sees_streams_and_whole_answers_in_its_place(
    gateway: Gateway,
) -> None:
    log: list[str] = []
    stages: Sequence[_SeenStage] = [_SeenStage("first", log), _SeenStage("second", log)]
    rows: list[LedgerRow] = []
    pipeline, _ = _pipeline(
        gateway, MemoryLimiter(), rows, Stages((), (HealthStage(), UsageStage(), *stages))
    )
    caller = Caller(PRINCIPAL, "req-s", "/v1/chat/completions")
    await pipeline.complete(caller, _request())
    whole = list(log)
    log.clear()
    streaming = await pipeline.stream(caller, _request(stream=True))
    texts = [e.text for e in [e async for e in streaming.events] if isinstance(e, TextDelta)]
    await streaming.aclose()
    # The whole answer reaches each stage, in order, as the events a stream of it would carry
    # (a stage that rewrites whole answers overrides ``result``; this one only reads them).
    assert whole == [
        "first:echo: hello",
        "first:usage",
        "second:echo: hello",
        "second:usage",
        "first:end 200",
        "second:end 200",
    ]
    # A stream passes the stages event by event, the second seeing what the first made of it.
    firsts = [x.removeprefix("first:") for x in log if x.startswith("first:")]
    seconds = [x.removeprefix("second:") for x in log if x.startswith("second:")]
    assert firsts == ["echo:", "hello", "usage", "end 200"]
    assert seconds == ["ECHO:", "HELLO", "usage", "end 200"]
    assert log[-2:] == ["first:end 200", "second:end 200"]
    assert texts == ["ECHO:", " HELLO"]  # what the client gets: the last stage's events
    assert [row[9] for row in rows] == [200, 200]  # each call finished once


async def test_stage_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Stages((), (UsageStage(), UsageStage()))


class _GatedLimiter:
    """A real Redis limiter whose settlement first waits for ``gate``: the window in which a
    client's disconnect cancels the clean-up."""

    def __init__(self, inner: RedisLimiter) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.settling = asyncio.Event()
        self.done = asyncio.Event()
        self.settled = 0

    async def acquire(self, scopes: Sequence[Scope], tokens: int, cost: int) -> Reservation:
        return await self.inner.acquire(scopes, tokens, cost)

    async def settle(self, reservation: Reservation, tokens: int, cost: int) -> None:
        self.settling.set()
        await self.gate.wait()
        await self.inner.settle(reservation, tokens, cost)
        self.settled += 1
        self.done.set()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_client_gone_mid_stream_settles_and_records_exactly_once(
    gateway: Gateway, redis_url: str
) -> None:
    limiter = _GatedLimiter(RedisLimiter(redis_url, prefix=f"t{uuid.uuid4().hex}"))
    rows: list[LedgerRow] = []
    pipeline, ending = _pipeline(gateway, limiter, rows)
    streaming = await pipeline.stream(
        Caller(PRINCIPAL, "req-gone", "/v1/chat/completions"), _request("trickle", True)
    )
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in streaming.events:
            first.set()

    try:
        # Starlette's response cancels this way when the client disconnects: a cancel scope
        # that cancels every await inside it again, clean-up included.
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await first.wait()
            group.cancel_scope.cancel()
        await asyncio.wait_for(limiter.settling.wait(), 10)
        assert limiter.settled == 0
        limiter.gate.set()  # the cancellation has come and gone; the settlement goes on
        await asyncio.wait_for(limiter.done.wait(), 10)
        await streaming.aclose()  # what the route does afterwards: nothing twice
        await asyncio.gather(*ending)
    finally:
        limiter.gate.set()
        await limiter.aclose()
    assert limiter.settled == 1
    assert [(row[0], row[9]) for row in rows] == [("req-gone", 499)]


class _Broken(Tap):
    __slots__ = ()

    def event(self, event: StreamEvent) -> StreamEvent:
        raise RuntimeError("a bug in a stage")


class _BrokenStage:
    name = "broken"

    def open(self, run: Run) -> Tap | None:
        return _Broken()


async def test_a_bug_in_a_stage_is_a_500_finished_once_and_no_breaker_hears_of_it(
    gateway: Gateway,
) -> None:
    rows: list[LedgerRow] = []
    stages = Stages((), (HealthStage(), UsageStage(), _BrokenStage()))
    pipeline, ending = _pipeline(gateway, MemoryLimiter(), rows, stages)
    caller = Caller(PRINCIPAL, "req-bug", "/v1/chat/completions")
    with pytest.raises(RuntimeError):
        await pipeline.complete(caller, _request())
    streaming = await pipeline.stream(caller, _request(stream=True))
    with pytest.raises(RuntimeError):
        async for _ in streaming.events:
            pass
    await streaming.aclose()
    await asyncio.gather(*ending)
    assert [(row[9], row[10]) for row in rows] == [(500, False), (500, True)]
    health = gateway.router.health.of("fake/gpt-4o-mini")
    assert health.state == "closed" and health.consecutive_failures == 0


async def test_a_tool_step_is_a_row_with_its_sizes_and_a_model_call_has_none(
    gateway: Gateway,
) -> None:
    rows: list[LedgerRow] = []
    pipeline, _ = _pipeline(gateway, MemoryLimiter(), rows)
    parent = Caller(PRINCIPAL, "req-r", "/v1/responses")
    await pipeline.complete(parent.step(1), _request())
    tool = Caller(PRINCIPAL, "req-r.t1", "mcp_call", "req-r")
    step = await pipeline.step(tool, "chat", ("add", "call_1", "calc"))
    await pipeline.end_step(step, Served("chat", "mcp:calc", "add"), 200, (17, 2))
    got = [dict(zip(FIELDS, row, strict=True)) for row in rows]
    assert [(r["request_id"], r["bytes_in"], r["bytes_out"]) for r in got] == [
        ("req-r.1", None, None),
        ("req-r.t1", 17, 2),
    ]
    assert (got[1]["parent_id"], got[1]["provider"], got[1]["model"]) == (
        "req-r",
        "mcp:calc",
        "add",
    )
    assert (got[1]["input_tokens"], got[1]["output_tokens"]) == (0, 0)
