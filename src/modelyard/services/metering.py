"""Metering: limits before the call, the usage ledger after it.

``admit`` reserves one request, an estimate of the tokens and of the cost from every limited
scope of the caller (its key, then its project); ``finish`` settles the reservation with the
actual usage and hands one ledger record to the background writer. A caller with no limits
skips the limiter entirely; nothing here waits on the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from modelyard.core.chat import (
    CHARS_PER_TOKEN,
    ChatRequest,
    ChatResult,
    Usage,
    estimate_prompt_tokens,
)
from modelyard.core.embeddings import EmbeddingRequest, EmbeddingResult
from modelyard.services.chat import Served
from modelyard.services.gateway import Gateway
from modelyard.store.journal import Journal, Segment
from modelyard.store.usage import LedgerRow
from modelyard.tenancy.keys import Principal
from modelyard.tenancy.limits import Limiter, RawHeader, Reservation, periods
from modelyard.tenancy.limits_memory import MemoryLimiter

# Output tokens assumed for a request that sets no max_tokens, when reserving.
DEFAULT_OUTPUT_ESTIMATE = 512
COST_HEADER = "x-modelyard-cost-micros"
_RAW_COST = COST_HEADER.encode()
_RAW_GUARDRAILS = b"x-modelyard-guardrails"


@dataclass(slots=True)
class Call:
    """What ``admit`` needs to know of a request, whatever its endpoint. (Not frozen: one is
    built per request, and a frozen dataclass takes twice as long to build.)"""

    request_id: str
    endpoint: str
    model: str
    # The usage to expect, worked out only when it is needed: to reserve against a limit, or
    # to record a call whose upstream reported none (``estimate_usage``: a pass over the text).
    estimate: Callable[[], Usage]
    stream: bool = False
    parent_id: str | None = None  # the request this call is a step of


@dataclass(slots=True)
class Ticket:
    """One admitted request, from ``admit`` to ``finish``."""

    call: Call
    principal: Principal
    started: float  # perf_counter
    created_at: float  # seconds since the epoch
    reservation: Reservation | None = None
    first_token_at: float | None = None
    output_chars: int = 0
    usage: Usage | None = None
    cost_micros: int | None = None
    finished: bool = False
    # The guardrails' verdicts (the ledger's ``guardrails``), and whether the client asked for
    # them in ``x-modelyard-guardrails``.
    guardrails: str | None = None
    show_guardrails: bool = False
    # A tool step's sizes in bytes (arguments sent, result received); None on model calls.
    bytes_in: int | None = None
    bytes_out: int | None = None
    journal: Segment | None = None  # where its start was journaled, when the journal is on

    def headers(self) -> dict[str, str]:
        """``x-ratelimit-*`` when limits apply; the cost once known (whole answers only); the
        guardrails' verdicts when asked for."""
        return {name.decode(): value.decode("latin-1") for name, value in self.raw_headers()}

    def raw_headers(self) -> list[RawHeader]:
        """``headers`` as the response sends them (byte pairs; a new list, the caller's)."""
        out = self.reservation.raw_headers() if self.reservation else []
        if self.cost_micros is not None:
            out.append((_RAW_COST, b"%d" % self.cost_micros))
        if self.show_guardrails:
            # Verdicts may name guards from the config: latin-1, as any header value.
            out.append((_RAW_GUARDRAILS, (self.guardrails or "none").encode("latin-1")))
        return out


def estimate_usage(request: ChatRequest) -> Usage:
    # +1: never reserve nothing, however short the prompt.
    return Usage(estimate_prompt_tokens(request) + 1, request.max_tokens or DEFAULT_OUTPUT_ESTIMATE)


def estimate_embedding_usage(request: EmbeddingRequest) -> Usage:
    inputs = request.inputs
    tokens = sum(len(i) if isinstance(i, list) else len(i) // CHARS_PER_TOKEN + 1 for i in inputs)
    return Usage(tokens, 0)


class Meter:
    def __init__(
        self,
        limiter: Limiter | None,
        record: Callable[[LedgerRow], object] | None,
        gateway: Callable[[], Gateway],
        journal: Journal | None = None,
    ) -> None:
        """``journal``: when set, each admitted request's start and its finished row go
        through it (it hands the row to the ledger's queue itself)."""
        self._limiter = limiter
        self._journal = journal if record is not None else None
        # Where a journaled ticket's row goes (never called without a journal: no ticket then
        # carries a segment); bound once, so the journal off costs one attribute test.
        self._journal_end = self._journal.end if self._journal is not None else _no_journal
        # The memory limiter never waits: call it directly rather than through a coroutine.
        self._memory = limiter if isinstance(limiter, MemoryLimiter) else None
        self._record = record
        self._gateway = gateway
        # deployment → (the config's gateway, dearest micro-$ per million input, output tokens)
        self._rates: dict[str, tuple[Gateway, int, int]] = {}

    async def admit(self, principal: Principal, call: Call) -> Ticket:
        ticket = Ticket(call, principal, time.perf_counter(), time.time())
        if self._limiter is not None and principal.scopes:
            estimate = call.estimate()
            cost = self._estimated_cost(call.model, estimate) if principal.budgeted else 0
            tokens = estimate.input_tokens + estimate.output_tokens
            if self._memory is not None:
                ticket.reservation = self._memory.acquire_now(principal.scopes, tokens, cost)
            else:
                ticket.reservation = await self._limiter.acquire(principal.scopes, tokens, cost)
        if self._journal is not None:  # admitted: from here on it finishes or is interrupted
            ticket.journal = self._journal.begin(
                (call.request_id, ticket.created_at, principal.project_id, principal.key_id,
                 call.endpoint, call.model, call.stream, call.parent_id)
            )  # fmt: skip
        return ticket

    def _estimated_cost(self, deployment: str, estimate: Usage) -> int:
        """The estimate at the deployment's dearest known rates (0 when none known), rounded
        up; the rates are worked out once per deployment and config."""
        gateway = self._gateway()
        found = self._rates.get(deployment)
        if found is None or found[0] is not gateway:  # new, or the config was reloaded
            if len(self._rates) > 1024:
                self._rates.clear()  # deployment names come and go with reloads
            found = self._rates[deployment] = (gateway, *_dearest_rates(gateway, deployment))
        micros = estimate.input_tokens * found[1] + estimate.output_tokens * found[2]
        return -(-micros // 1_000_000)

    def close(
        self, ticket: Ticket, served: Served | None, status: int
    ) -> Coroutine[Any, Any, None] | None:
        """Record the request and settle its reservation, once whatever called first. The
        memory limiter settles at once; a remote one's settlement is returned, to be awaited
        where a cancellation cannot interrupt it (``services.pipeline``)."""
        if ticket.finished:
            return None
        ticket.finished = True
        usage = ticket.usage
        reported = usage is not None
        if usage is None:
            usage = self._estimated(ticket, served)
        cost = (
            self._gateway().cost_of(served.provider, served.model, usage)
            if served is not None
            else 0
        )
        ticket.cost_micros = cost
        if self._record is not None:
            row = _record(ticket, served, status, usage, cost, reported)
            if ticket.journal is None:
                self._record(row)
            else:
                self._journal_end(ticket.journal, row)
        reservation = ticket.reservation
        if reservation is not None and self._limiter is not None:
            tokens = usage.input_tokens + usage.output_tokens
            if self._memory is None:
                return self._limiter.settle(reservation, tokens, cost or 0)
            self._memory.settle_now(reservation, tokens, cost or 0)
        return None

    async def finish(self, ticket: Ticket, served: Served | None, status: int) -> None:
        """``close``, awaiting the settlement here."""
        pending = self.close(ticket, served, status)
        if pending is not None:
            await pending

    def _estimated(self, ticket: Ticket, served: Served | None) -> Usage:
        if served is None:
            return Usage()
        output = (ticket.output_chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
        return Usage(ticket.call.estimate().input_tokens, output)

    def observe_result(self, ticket: Ticket, result: ChatResult | EmbeddingResult) -> None:
        ticket.usage = result.usage
        if result.usage is None and isinstance(result, ChatResult):
            ticket.output_chars = sum(len(c.message.text()) for c in result.choices)


def _no_journal(segment: Segment, row: LedgerRow) -> None:
    raise AssertionError("a journaled ticket without a journal")  # pragma: no cover


def _dearest_rates(gateway: Gateway, deployment: str) -> tuple[int, int]:
    resolved = gateway.table.get(deployment)
    if resolved is None:
        return 0, 0
    million_in, million_out = Usage(1_000_000, 0), Usage(0, 1_000_000)
    inputs = [gateway.cost_of(t.provider, t.model, million_in) for t in resolved.targets]
    outputs = [gateway.cost_of(t.provider, t.model, million_out) for t in resolved.targets]
    return (
        max((c for c in inputs if c is not None), default=0),
        max((c for c in outputs if c is not None), default=0),
    )


def _record(
    ticket: Ticket,
    served: Served | None,
    status: int,
    usage: Usage,
    cost: int | None,
    reported: bool,
) -> LedgerRow:
    """The ledger row, in ``UsageRecord``'s field order (see ``store.usage.LedgerRow``)."""
    now = time.perf_counter()
    call, principal = ticket.call, ticket.principal
    ttft = ticket.first_token_at
    return (
        call.request_id,
        ticket.created_at,
        periods(int(ticket.created_at * 1000))[0],  # the UTC day, cached by the day
        principal.project_id,
        principal.key_id,
        call.endpoint,
        served.deployment if served else call.model,
        served.provider if served else None,
        served.model if served else None,
        status,
        call.stream,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
        cost,
        round((now - ticket.started) * 1_000_000) / 1000,  # ms, to the µs
        round((ttft - ticket.started) * 1_000_000) / 1000 if ttft is not None else None,
        served.attempts if served else 0,
        reported,
        call.parent_id,
        ticket.guardrails,
        served.route if served else None,
        ticket.bytes_in,
        ticket.bytes_out,
    )
