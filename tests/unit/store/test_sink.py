"""The batching writer: off the request path, bounded, retried, drained at close."""

from __future__ import annotations

import asyncio

from modelyard.store.errors import StoreError
from modelyard.store.sink import BatchSink
from tests.waiting import ManualTicks


class Target:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.failures = failures

    async def write(self, batch: list[int]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("database error: connection refused")
        self.batches.append(list(batch))


async def test_records_are_written_in_batches_by_the_background_task():
    target = Target()
    ticks = ManualTicks()
    sink = BatchSink("t", target.write, max_batch=10, tick=ticks)
    sink.start()
    for i in range(25):
        assert sink.put(i)
    await ticks.tick()  # whole batches, and no more once less than a batch is left
    assert target.batches == [list(range(10)), list(range(10, 20))]
    await ticks.tick()
    assert target.batches[2:] == [list(range(20, 25))]
    assert sink.pending == 0 and sink.written == 25
    await sink.aclose()


async def test_a_failed_batch_is_kept_and_retried_in_order():
    target = Target(failures=2)
    ticks = ManualTicks()
    sink = BatchSink("t", target.write, tick=ticks)
    sink.retry_backoff_s = 0
    sink.start()
    for i in range(5):
        sink.put(i)
    await ticks.tick()
    assert target.batches == [[0, 1, 2, 3, 4]]
    assert target.failures == 0  # both failures were met and retried
    assert sink.written == 5
    await sink.aclose()


async def test_a_full_queue_refuses_and_counts_instead_of_growing():
    target = Target()
    sink = BatchSink("t", target.write, max_queue=3, interval_s=60)
    assert [sink.put(i) for i in range(5)] == [True, True, True, False, False]
    assert sink.dropped == 2
    await sink.aclose()
    assert target.batches == [[0, 1, 2]]


async def test_close_drains_everything_queued_and_then_refuses():
    target = Target()
    sink = BatchSink("t", target.write, max_batch=2, interval_s=60)
    sink.start()
    for i in range(5):
        sink.put(i)
    await sink.aclose()
    assert [x for b in target.batches for x in b] == [0, 1, 2, 3, 4]
    assert not sink.put(9)


async def test_a_batch_being_written_at_close_is_written_once():
    """A writer that hands the batch to another thread commits it even if the awaiting task is
    cancelled; closing must let that write finish rather than cancel it and write it again."""
    handed_over: list[list[int]] = []
    started = asyncio.Event()

    finish = asyncio.Event()

    async def slow_write(batch: list[int]) -> None:
        handed_over.append(list(batch))  # committed from here on, whatever happens to us
        started.set()
        await finish.wait()

    ticks = ManualTicks()
    sink = BatchSink("t", slow_write, tick=ticks)
    sink.start()
    for i in range(5):
        sink.put(i)
    await ticks.waiting()
    ticking = asyncio.create_task(ticks.tick())
    await started.wait()
    sink.put(5)  # arrives while the first batch is being written
    closing = asyncio.create_task(sink.aclose())
    await asyncio.sleep(0)  # one step: aclose begins, and must wait for the write, not cancel it
    assert not closing.done() and not sink.put(6)
    finish.set()
    await closing
    ticking.cancel()  # the loop has ended: no next wait to report
    assert [x for b in handed_over for x in b] == list(range(6))
    assert sink.pending == 0


async def test_records_arriving_during_a_write_wait_for_the_next_interval():
    """Under steady load the writer makes one batch per interval, not one per round trip."""
    batches: list[list[int]] = []
    sink: BatchSink[int]

    async def slow_write(batch: list[int]) -> None:
        batches.append(list(batch))
        sink.put(100 + len(batches))  # a request finishing while this batch is written
        await asyncio.sleep(0)  # the write's round trip

    ticks = ManualTicks()
    sink = BatchSink("t", slow_write, max_batch=50, tick=ticks)
    sink.start()
    sink.put(0)
    await ticks.tick()  # one round: the write of [0] and nothing chasing its arrivals
    assert batches == [[0]] and sink.pending == 1
    await ticks.tick()  # the next round takes what arrived meanwhile
    assert batches == [[0], [101]]
    await sink.aclose()


async def test_whole_batches_waiting_are_written_without_waiting_for_the_tick():
    target = Target()
    ticks = ManualTicks()
    sink = BatchSink("t", target.write, max_batch=4, tick=ticks)
    sink.start()
    await ticks.waiting()
    for i in range(10):
        sink.put(i)
    await ticks.waiting(2)  # woken by the full batches, not by a tick
    assert target.batches == [[0, 1, 2, 3], [4, 5, 6, 7]]  # the 2 left wait for the tick
    await ticks.tick()
    assert target.batches[-1] == [8, 9]
    await sink.aclose()


async def test_an_unexpected_writer_error_is_logged_and_the_writer_carries_on(caplog):
    calls: list[list[int]] = []

    async def buggy_once(batch: list[int]) -> None:
        calls.append(list(batch))
        if len(calls) == 1:
            raise KeyError("a bug")

    ticks = ManualTicks()
    sink = BatchSink("t", buggy_once, tick=ticks)
    sink.put(1)
    sink.put(2)
    sink.start()
    await ticks.tick()
    assert calls == [[1, 2]] and sink.pending == 2  # the task survived and kept the batch
    await ticks.tick()
    assert calls == [[1, 2], [1, 2]]  # written on the next tick
    assert sink.written == 2 and sink.pending == 0
    assert "batch not written" in caplog.text
    await sink.aclose()
