"""The fair admission queue in front of a local model: fairness, bound, 429s, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest

from modelyard.core.errors import QueueFull
from modelyard.local.asgi import Responder
from modelyard.local.fair_queue import FairQueue, QueueTicket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _grant_order(
    queue: FairQueue, tickets: list[QueueTicket], holder: QueueTicket
) -> list[QueueTicket]:
    """Release the holder, then each newly granted ticket, and record who got the model."""
    order: list[QueueTicket] = []
    current = holder
    for _ in tickets:
        current.release()
        granted = [t for t in tickets if t.granted]
        assert len(granted) == 1
        current = granted[0]
        await current.wait()  # already granted: returns at once
        order.append(current)
    current.release()
    return order


async def test_idle_queue_grants_at_once() -> None:
    queue = FairQueue("m", 4)
    ticket = queue.enqueue("a")
    assert ticket.granted
    await asyncio.wait_for(ticket.wait(), 1)
    assert queue.busy
    assert queue.waiting == 0
    ticket.release()
    assert not queue.busy


async def test_round_robin_between_clients_fifo_within_one() -> None:
    queue = FairQueue("m", 10)
    holder = queue.enqueue("a")
    a2, a3 = queue.enqueue("a"), queue.enqueue("a")
    b1, b2 = queue.enqueue("b"), queue.enqueue("b")
    c1 = queue.enqueue("c")
    assert queue.waiting == 5
    order = await _grant_order(queue, [a2, a3, b1, b2, c1], holder)
    # Client a queued first, but once served it waits behind b and c.
    assert order == [a2, b1, c1, a3, b2]
    assert queue.waiting == 0
    assert not queue.busy


async def test_a_flooding_client_does_not_starve_a_single_request() -> None:
    queue = FairQueue("m", 64)
    holder = queue.enqueue("flood")
    flood = [queue.enqueue("flood") for _ in range(20)]
    single = queue.enqueue("polite")
    order = await _grant_order(queue, [*flood, single], holder)
    assert order.index(single) == 1


async def test_full_queue_raises_queue_full_with_retry_after() -> None:
    queue = FairQueue("m", 2)
    queue.enqueue("a")
    queue.enqueue("a")
    queue.enqueue("b")
    with pytest.raises(QueueFull) as caught:
        queue.enqueue("c")
    error = caught.value
    assert error.status == 429
    assert error.code == "queue_full"
    assert error.retry_after is not None and error.retry_after >= 1
    assert "'m'" in error.message
    assert queue.waiting == 2


async def test_queue_full_renders_openai_429_with_retry_after_header() -> None:
    queue = FairQueue("tiny", 1, initial_service_s=2.5)
    queue.enqueue("a")
    queue.enqueue("a")
    with pytest.raises(QueueFull) as caught:
        queue.enqueue("a")
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await Responder(send).error(caught.value)
    start, body = sent
    assert start["status"] == 429
    headers = dict(start["headers"])
    # 2.5 s per job, one running and one waiting: ceil(5.0).
    assert headers[b"retry-after"] == b"5"
    error = orjson.loads(body["body"])["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "queue_full"
    assert set(error) == {"message", "type", "param", "code"}


async def test_retry_after_follows_moving_average_of_service_time() -> None:
    clock = FakeClock()
    queue = FairQueue("m", 8, initial_service_s=1.0, smoothing=0.5, clock=clock)
    assert queue.retry_after() == 1  # idle: still at least one second
    first = queue.enqueue("a")
    clock.now += 5.0
    first.release()
    assert queue.average_service_s == pytest.approx(3.0)  # 1.0 + 0.5 * (5.0 - 1.0)
    holder = queue.enqueue("a")
    queue.enqueue("b")
    queue.enqueue("c")
    assert queue.retry_after() == 9  # 3.0 s x (1 running + 2 waiting)
    clock.now += 0.2
    holder.release()
    assert queue.average_service_s == pytest.approx(1.6)
    assert queue.retry_after() == 4  # ceil(1.6 x (1 running + 1 waiting))


async def test_retry_after_is_never_below_one_second() -> None:
    clock = FakeClock()
    queue = FairQueue("m", 8, smoothing=1.0, clock=clock)
    queue.enqueue("a").release()  # zero service time
    queue.enqueue("a")
    queue.enqueue("b")
    assert queue.average_service_s == 0.0
    assert queue.retry_after() == 1


async def test_cancelled_waiter_leaves_the_queue() -> None:
    queue = FairQueue("m", 1)
    holder = queue.enqueue("a")
    gone = queue.enqueue("b")
    waiter = asyncio.create_task(gone.wait())
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        queue.enqueue("c")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert queue.waiting == 0
    # Its place is free again, and it is never granted.
    later = queue.enqueue("c")
    holder.release()
    assert later.granted
    assert not gone.granted


async def test_waiter_cancelled_before_its_cleanup_ran_is_skipped() -> None:
    queue = FairQueue("m", 4)
    holder = queue.enqueue("a")
    gone, next_one = queue.enqueue("b"), queue.enqueue("c")
    waiter = asyncio.create_task(gone.wait())
    await asyncio.sleep(0)
    waiter.cancel()  # the ticket's future is cancelled now; the task's cleanup runs later
    holder.release()
    assert next_one.granted
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert queue.waiting == 0
    next_one.release()
    assert not queue.busy


async def test_grant_racing_a_cancel_passes_the_model_on() -> None:
    queue = FairQueue("m", 4)
    holder = queue.enqueue("a")
    raced, after = queue.enqueue("b"), queue.enqueue("c")
    waiter = asyncio.create_task(raced.wait())
    await asyncio.sleep(0)
    holder.release()  # grants `raced`, whose task has not resumed yet
    assert raced.granted
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert after.granted
    assert not raced.granted


async def test_release_twice_is_harmless() -> None:
    queue = FairQueue("m", 4)
    first = queue.enqueue("a")
    second = queue.enqueue("b")
    first.release()
    first.release()
    assert second.granted
    assert queue.busy


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FairQueue("m", 0)
