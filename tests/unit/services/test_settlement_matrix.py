"""Invariant (a) of issue 17: every admitted request settles exactly once, whatever ends it,
through each limiter (memory, Redis); and #3: a request that fails is no lock-out of its
project's budget.

Every ending (an answer, streamed or not; an upstream error; an error after the first stream
event; a client gone mid-stream; a cancellation; a bug in a pre-call or a stream stage; a
client error) is driven through one pipeline. Afterwards: no reservation is outstanding, no
finish is still running, there is one ledger row per admitted request with the ending's
status, and the budget and token bucket have all their room back (a request reserving nearly
all of them is admitted)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
from tests.fakes.hostile import Hostile
from tests.redis_server import running_redis
from tests.waiting import eventually

from modelyard.config.loader import settings_from_data
from modelyard.core.chat import ChatRequest, Message, TextPart
from modelyard.core.errors import ModelyardError
from modelyard.services.chat import ChatService
from modelyard.services.embeddings import EmbeddingService
from modelyard.services.gateway import Gateway
from modelyard.services.metering import Meter
from modelyard.services.pipeline import Caller, Pipeline, Run, Stages, Tap
from modelyard.services.stages import default_stages
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import Limiter, Reservation, Scope
from modelyard.tenancy.limits_memory import MemoryLimiter
from modelyard.tenancy.limits_redis import RedisLimiter

BUDGET = 10_000  # micro-dollars: $0.01 a day, as in the issue
TPM = 20_000
PRINCIPAL = Principal(
    "key000000005",
    project_id="p5",
    scopes=(Scope("key:k5", rpm=1_000, tpm=TPM), Scope("project:p5", daily_budget_micros=BUDGET)),
    budgeted=True,
)
MAX_TOKENS = 4_000  # reserves $0.004 at $1 per million: three held reservations lock it out


class Counted:
    """A real limiter whose reservations are counted: taken, and settled once."""

    def __init__(self, inner: Limiter) -> None:
        self.inner = inner
        self.outstanding: set[int] = set()
        self.settled_twice = 0

    def taken(self, reservation: Reservation) -> Reservation:
        self.outstanding.add(id(reservation))
        return reservation

    def given_back(self, reservation: Reservation) -> None:
        if id(reservation) not in self.outstanding:
            self.settled_twice += 1
        self.outstanding.discard(id(reservation))

    async def acquire(self, scopes: Sequence[Scope], tokens: int, cost: int) -> Reservation:
        return self.taken(await self.inner.acquire(scopes, tokens, cost))

    async def settle(self, reservation: Reservation, tokens: int, cost: int) -> None:
        await self.inner.settle(reservation, tokens, cost)
        self.given_back(reservation)

    async def aclose(self) -> None:
        await self.inner.aclose()


class CountedMemory(MemoryLimiter):
    """The memory limiter, counted the same way (the meter calls its ``*_now`` methods)."""

    def __init__(self) -> None:
        super().__init__()
        self.counter = Counted(MemoryLimiter())

    def acquire_now(self, scopes: Sequence[Scope], tokens: int, cost: int) -> Reservation:
        return self.counter.taken(super().acquire_now(scopes, tokens, cost))

    def settle_now(self, reservation: Reservation, tokens: int, cost: int) -> None:
        super().settle_now(reservation, tokens, cost)
        self.counter.given_back(reservation)


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    with Hostile() as server:
        yield server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> Callable[[], tuple[Limiter, Counted]]:
    def make() -> tuple[Limiter, Counted]:
        if request.param == "memory":
            memory = CountedMemory()
            return memory, memory.counter
        url: str = request.getfixturevalue("redis_url")
        counted = Counted(RedisLimiter(url, prefix=f"m{uuid.uuid4().hex}"))
        return counted, counted

    return make


@pytest.fixture
async def matrix_gateway(hostile: Hostile) -> AsyncIterator[Gateway]:
    provider = {"type": "openai_compatible", "base_url": hostile.base_url, "api_key": "k" * 20}
    once = {"attempts": 1}
    models = ["ok", "echo-500", "partial", "hang", "bad-usage", "bug", "prebug"]
    settings = {
        "local": {"enabled": False},
        "providers": {"h": provider},
        "deployments": {
            m: {"targets": [{"provider": "h", "model": "ok" if "bug" in m else m}], "retry": once}
            for m in models
        },
        "prices": {f"h/{m}": {"input": 1, "output": 1} for m in models if "bug" not in m},
    }
    built = Gateway(settings_from_data(settings), None)
    yield built
    await built.aclose()


class _Broken(Tap):
    __slots__ = ()

    def event(self, event: Any) -> Any:
        raise RuntimeError("a bug in a stream stage")


class _BugStage:
    """Breaks the answers of the ``bug`` deployment, and the requests of ``prebug``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def open(self, run: Run) -> Tap | None:
        return _Broken() if run.request.model == "bug" else None

    async def check(self, run: Run, request: ChatRequest) -> ChatRequest:
        if request.model == "prebug":
            raise RuntimeError("a bug in a pre-call stage")
        return request


def _request(model: str, stream: bool, **extra: Any) -> ChatRequest:
    message = Message("user", (TextPart("hi"),))
    return ChatRequest(model, [message], max_tokens=MAX_TOKENS, stream=stream, extra=extra)


Ending = Callable[[Pipeline, Caller, Hostile], Awaitable[None]]


async def _answered(pipeline: Pipeline, caller: Caller, hostile: Hostile) -> None:
    await pipeline.complete(caller, _request("ok", False))


async def _streamed(pipeline: Pipeline, caller: Caller, hostile: Hostile) -> None:
    streaming = await pipeline.stream(caller, _request("ok", True))
    async for _ in streaming.events:
        pass


async def _failing(model: str, stream: bool, **extra: Any) -> Ending:
    async def ending(pipeline: Pipeline, caller: Caller, hostile: Hostile) -> None:
        with pytest.raises(Exception) as raised:  # each kind is checked by status
            if not stream:
                await pipeline.complete(caller, _request(model, False, **extra))
                return
            streaming = await pipeline.stream(caller, _request(model, True, **extra))
            try:
                async for _ in streaming.events:
                    pass
            finally:
                await streaming.aclose()
        assert isinstance(raised.value, ModelyardError | RuntimeError)

    return ending


async def _client_gone(pipeline: Pipeline, caller: Caller, hostile: Hostile) -> None:
    streaming = await pipeline.stream(caller, _request("ok", True))
    await anext(streaming.events)
    await streaming.aclose()  # what the route does when the client has left


async def _cancelled(pipeline: Pipeline, caller: Caller, hostile: Hostile) -> None:
    before = hostile.hits["hang"]
    task = asyncio.create_task(pipeline.complete(caller, _request("hang", False)))

    async def arrived() -> bool:
        return hostile.hits["hang"] > before

    await eventually(arrived, "the request reached the hanging upstream")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def _endings() -> list[tuple[str, Ending, int]]:
    return [
        ("answered", _answered, 200),
        ("streamed", _streamed, 200),
        ("upstream error", await _failing("echo-500", False), 502),
        ("unreadable answer (an adapter raises)", await _failing("bad-usage", False), 502),
        ("error after the first event", await _failing("partial", True), 502),
        ("client gone mid-stream", _client_gone, 499),
        ("cancelled", _cancelled, 499),
        ("bug in a stream stage", await _failing("bug", False), 500),
        ("bug in a streamed stage", await _failing("bug", True), 500),
        ("bug in a pre-call stage", await _failing("prebug", False), 500),
        ("client error (#3: 300 levels deep)", await _failing("ok", False, x=_deep(300)), 400),
        ("client error, streamed", await _failing("ok", True, x=_deep(300)), 400),
    ]


async def test_every_ending_settles_once_and_gives_its_room_back(
    matrix_gateway: Gateway,
    hostile: Hostile,
    make_limiter: Callable[[], tuple[Limiter, Counted]],
) -> None:
    limiter, counted = make_limiter()
    rows: list[LedgerRow] = []
    ending: set[asyncio.Task[None]] = set()
    meter = Meter(limiter, rows.append, lambda: matrix_gateway)
    stages = default_stages(None)
    stages = Stages((_BugStage("pre-bug"),), (*stages.stream, _BugStage("bug")))
    chat, embeddings = ChatService(matrix_gateway), EmbeddingService(matrix_gateway)
    pipeline = Pipeline(chat, embeddings, meter, stages, ending)
    expected = []
    try:
        for round_ in range(2):  # twice: what one round held back would refuse the second
            for name, run, status in await _endings():
                caller = Caller(PRINCIPAL, f"{round_}:{name}", "/v1/chat/completions")
                await run(pipeline, caller, hostile)
                expected.append((caller.request_id, status))
                await asyncio.gather(*ending)
                assert counted.outstanding == set(), name
        # Nearly all the room there is: refused if anything was left reserved.
        big = ChatRequest("ok", [Message("user", (TextPart("hi"),))], max_tokens=BUDGET - 500)
        await pipeline.complete(Caller(PRINCIPAL, "last", "/v1/chat/completions"), big)
        await asyncio.gather(*ending)
    finally:
        await limiter.aclose()
    assert [(row[0], row[9]) for row in rows] == [*expected, ("last", 200)]
    assert counted.outstanding == set() and counted.settled_twice == 0
    assert ending == set()
