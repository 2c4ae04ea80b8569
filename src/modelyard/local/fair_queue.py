"""A bounded, fair admission queue in front of one model.

A model has a single inference thread, so only one job runs at a time; everything else waits
here. Waiting jobs are grouped by client: grants go round-robin between clients, and in arrival
order within one client, so a client that fires a hundred requests cannot starve one that sends
a single request. The queue is bounded: when it is full, ``enqueue`` raises ``QueueFull`` with a
retry-after estimate built from a moving average of how long a job holds the model.

Everything here runs on the event loop; the only call meant to arrive from elsewhere is
``QueueTicket.release``, which callers marshal onto the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from modelyard.core.errors import QueueFull


class _State(enum.Enum):
    WAITING = "waiting"
    GRANTED = "granted"
    DONE = "done"


class QueueTicket:
    """One request's place in a ``FairQueue``."""

    def __init__(self, queue: FairQueue, client: str, future: asyncio.Future[None]) -> None:
        self._queue = queue
        self.client = client
        self._future = future
        self._state = _State.WAITING
        self._granted_at = 0.0

    @property
    def granted(self) -> bool:
        """True while this ticket holds the model."""
        return self._state is _State.GRANTED

    async def wait(self) -> None:
        """Wait until the model is ours.

        If the waiting task is cancelled (the client went away), the ticket leaves the queue, or,
        when the grant raced the cancellation, hands the model straight to the next ticket.
        """
        try:
            await self._future
        except asyncio.CancelledError:
            if self._state is _State.GRANTED:
                self._queue._release(self, observe=False)
            else:
                self._queue._withdraw(self)
            raise

    def release(self) -> None:
        """Give the model back; the next waiting ticket is granted. Safe to call twice."""
        self._queue._release(self, observe=True)


class FairQueue:
    """Admits one job at a time to a model, round-robin between clients, with bounded waiting."""

    def __init__(
        self,
        model: str,
        capacity: int,
        *,
        initial_service_s: float = 1.0,
        smoothing: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"queue capacity must be at least 1, got {capacity}")
        self._model = model
        self._capacity = capacity
        self._smoothing = smoothing
        self._clock = clock
        self._average_service_s = initial_service_s
        # Clients with waiting tickets, in the order they will next be served.
        self._flows: OrderedDict[str, deque[QueueTicket]] = OrderedDict()
        self._waiting = 0
        self._holder: QueueTicket | None = None

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def waiting(self) -> int:
        """How many tickets wait (not counting the one that holds the model)."""
        return self._waiting

    @property
    def busy(self) -> bool:
        """True while some ticket holds the model."""
        return self._holder is not None

    @property
    def average_service_s(self) -> float:
        """The moving average of how long a granted ticket held the model."""
        return self._average_service_s

    def retry_after(self) -> int:
        """Whole seconds until a slot is likely to free up; at least 1."""
        ahead = self._waiting + (1 if self._holder is not None else 0)
        return max(1, math.ceil(self._average_service_s * ahead))

    def enqueue(self, client: str) -> QueueTicket:
        """Take a place in the queue for ``client``; granted at once when the model is idle.

        Raises:
            QueueFull: ``capacity`` tickets are already waiting.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ticket = QueueTicket(self, client, future)
        if self._holder is None and self._waiting == 0:
            self._grant(ticket)
            return ticket
        if self._waiting >= self._capacity:
            seconds = self.retry_after()
            raise QueueFull(
                f"model {self._model!r} is busy: {self._waiting} requests are already queued "
                f"(capacity {self._capacity}); retry after {seconds}s",
                code="queue_full",
                retry_after=float(seconds),
            )
        flow = self._flows.get(client)
        if flow is None:
            flow = self._flows[client] = deque()
        flow.append(ticket)
        self._waiting += 1
        return ticket

    def _grant(self, ticket: QueueTicket) -> None:
        ticket._state = _State.GRANTED
        ticket._granted_at = self._clock()
        self._holder = ticket
        ticket._future.set_result(None)

    def _grant_next(self) -> None:
        while self._flows:
            client, flow = next(iter(self._flows.items()))
            ticket = flow.popleft()
            self._waiting -= 1
            if flow:
                # This client goes to the back of the rotation: that is the round-robin.
                self._flows.move_to_end(client)
            else:
                del self._flows[client]
            if ticket._future.done():
                # Its task was cancelled and has not run its cleanup yet: skip it for good.
                ticket._state = _State.DONE
                continue
            self._grant(ticket)
            return

    def _release(self, ticket: QueueTicket, *, observe: bool) -> None:
        if self._holder is not ticket:
            return
        ticket._state = _State.DONE
        self._holder = None
        if observe:
            elapsed = self._clock() - ticket._granted_at
            self._average_service_s += self._smoothing * (elapsed - self._average_service_s)
        self._grant_next()

    def _withdraw(self, ticket: QueueTicket) -> None:
        if ticket._state is not _State.WAITING:
            return
        ticket._state = _State.DONE
        flow = self._flows.get(ticket.client)
        if flow is None or ticket not in flow:
            return
        flow.remove(ticket)
        self._waiting -= 1
        if not flow:
            del self._flows[ticket.client]
