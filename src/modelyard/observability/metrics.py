"""The gateway's Prometheus metrics: one ``Metrics`` per app, correct under ``--workers N``.

Multi-process mode is prometheus-client's: when ``PROMETHEUS_MULTIPROC_DIR`` is set before the
library is imported (``modelyard serve`` sets a fresh directory per run), every worker writes its
values to memory-mapped files there and a scrape answered by any worker sums them all. Without
it (one process, tests, embedding) the app keeps its own registry.

Label values are bounded by the config, never by a client: routes are the served route
templates (anything else is ``other``), deployments, providers and models are the configured
ones that served the call (``-`` when none did), projects are the operator's. No request ids,
keys or free text. A finished call appends one tuple of its raw facts to one list
(``Metrics.calls``), an answered HTTP request one to another (``Metrics.http_records``). Once a
second (and before a scrape) the flush groups them by label set (sorting and grouping run in C,
not per call in Python), looks each label set's children up once and kept, and hands the
values, bucketed and summed all at once, to prometheus-client.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from itertools import groupby
from operator import attrgetter, is_not, itemgetter
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from modelyard.core.chat import Usage
from modelyard.observability.labels import MULTIPROC_ENV as MULTIPROC_ENV  # noqa: PLC0414
from modelyard.observability.labels import NONE as NONE  # noqa: PLC0414
from modelyard.observability.labels import OTHER as OTHER  # noqa: PLC0414

_LATENCY: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
_GAP: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_RATE: Final = (1, 5, 10, 25, 50, 100, 200, 400, 800, 1600)
_GUARD: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 2.5, 5)
BREAKER_VALUES: Final[Mapping[str, float]] = MappingProxyType(
    {"closed": 0.0, "half_open": 1.0, "open": 2.0}
)
TOKEN_KINDS: Final = ("input", "output", "cached", "reasoning")
# The ``Usage`` field of each token kind, in ``TOKEN_KINDS`` order.
_USAGE_FIELDS: Final = tuple(
    attrgetter(name)
    for name in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")
)

# A finished, served call's raw facts, as ``CallWatch.finish`` appends them: its label values
# (endpoint, deployment, provider, model, status, project), its duration, its answering
# attempt's duration (None: no attempt answered), its usage and its cost in micro-dollars.
CallRecord = tuple[str, str, str, str, int, str, float, float | None, Usage | None, int | None]
_CALL_KEY: Final = itemgetter(0, 1, 2, 3, 4, 5)
# An answered HTTP request: its matched route's template ("": none matched), the status the
# client got and the request's duration, to the end of the body.
HttpRecord = tuple[str, int, float]
_HTTP_KEY: Final = itemgetter(0, 1)
_HTTP_SECONDS: Final = itemgetter(2)
_is_some: Final = partial(is_not, None)


class CounterTally:
    """A counter child's increments, summed in plain Python and handed to prometheus-client
    at each flush: recording is one addition, no library call, no lock."""

    __slots__ = ("child", "pending")

    def __init__(self, child: Counter) -> None:
        self.child = child
        self.pending = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.pending += amount

    def flush(self) -> None:
        if self.pending:
            amount, self.pending = self.pending, 0.0
            self.child._value.inc(amount)  # as ``HistogramTally.flush``


class HistogramTally:
    """A histogram child's observations, appended to a list as they come (the whole cost on
    the request path) and bucketed at each flush by numpy, all at once; ``counter``, when set,
    is a companion counter of the same observations (calls and their durations)."""

    __slots__ = ("bounds", "child", "counter", "seen")

    def __init__(self, child: Histogram, counter: Counter | None = None) -> None:
        # numpy (11 MB) is imported when metrics are on, not by every server that imports this
        import numpy as np

        self.child = child
        self.counter = counter
        self.bounds = np.asarray(child._upper_bounds, dtype=np.float64)  # ends with +Inf
        # The list is never replaced (``flush`` empties it), so its ``append`` may be kept.
        self.seen: list[float] = []

    def observe(self, amount: float) -> None:
        self.seen.append(amount)

    def flush(self) -> None:
        seen = self.seen
        if not seen:
            return
        import numpy as np  # already loaded by ``__init__``: a lookup

        values = np.asarray(seen, dtype=np.float64)
        total = sum(seen)  # in order, as ``observe`` would add them
        seen.clear()
        # The first bound >= each value (prometheus's ``le``), as ``bisect_left`` would find.
        # The arrays' own methods, not numpy's module functions: those are Python wrappers.
        counts = np.bincount(self.bounds.searchsorted(values), minlength=len(self.bounds))
        child = self.child
        # prometheus-client 0.26's own fields, as ``observe`` and ``Counter.inc`` use them
        # (their checks are for a caller's amounts; these are counts and sums of durations).
        child._sum.inc(total)
        for index in counts.nonzero()[0]:
            child._buckets[index].inc(int(counts[index]))
        if self.counter is not None:
            self.counter._value.inc(len(values))


class SpendTally:
    """Tokens by kind and cost of one (deployment, project): each call's usage and cost
    appended, summed at the flush."""

    __slots__ = ("cost", "costs", "tokens", "usages")

    def __init__(self, tokens: tuple[Counter, ...], cost: Counter) -> None:
        self.tokens = tokens  # in ``TOKEN_KINDS`` order
        self.cost = cost
        self.usages: list[Usage] = []
        self.costs: list[int] = []  # micro-dollars

    def flush(self) -> None:
        usages, costs = self.usages, self.costs
        if usages:
            for counter, field in zip(self.tokens, _USAGE_FIELDS, strict=True):
                amount = sum(map(field, usages))
                if amount:
                    counter._value.inc(amount)  # as ``HistogramTally.flush``
            usages.clear()
        if costs:
            self.cost._value.inc(sum(costs) / 1_000_000)
            costs.clear()


T = TypeVar("T", CounterTally, HistogramTally)


class Children(Generic[T]):
    """A metric's tallies by label values, each label set looked up once (prometheus-client's
    ``labels()`` validates and locks on every call); every tally made is flushed by ``flush``."""

    __slots__ = ("_cache", "_make", "_metric", "_tallies")

    def __init__(
        self, metric: Counter | Histogram, make: Callable[[Any], T], tallies: list[Flushable]
    ) -> None:
        self._metric = metric
        self._make: Callable[[Any], T] = make
        self._cache: dict[tuple[str, ...], T] = {}
        self._tallies = tallies

    def __call__(self, *labels: str) -> T:
        tally = self._cache.get(labels)
        if tally is None:
            tally = self._cache[labels] = self._make(self._metric.labels(*labels))
            self._tallies.append(tally)
        return tally


Flushable = CounterTally | HistogramTally | SpendTally


class CallSeries:
    """Where one kind of finished call is recorded, found by one dict lookup on its raw facts
    (endpoint, deployment, provider, model, status, project): the call's duration, its
    answering attempt's duration and its spend (``Metrics.call_series``)."""

    __slots__ = ("attempts", "seconds", "spend")

    def __init__(self, seconds: list[float], attempts: list[float], spend: SpendTally) -> None:
        self.seconds = seconds
        self.attempts = attempts  # the provider's ``ok`` attempts
        self.spend = spend


class Streams:
    """The stream series of one served (deployment, provider, model), and its failovers."""

    __slots__ = ("failovers", "inter_token", "output_rate", "ttft")

    def __init__(self, metrics: Metrics, deployment: str, provider: str, model: str) -> None:
        self.ttft = metrics.ttft_of(deployment, provider, model)
        self.inter_token = metrics.inter_token_of(deployment, provider, model)
        self.output_rate = metrics.output_rate_of(deployment, provider, model)
        self.failovers = metrics.failovers_of(deployment)


def _none_in_flight() -> int:
    return 0


def multiprocess() -> bool:
    """Whether prometheus-client was imported in multi-process mode."""
    return values.ValueClass is not values.MutexValue


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class Metrics:
    """Every metric the gateway exports; ``routes`` are the route templates it serves."""

    def __init__(self, routes: Iterable[str]) -> None:
        self.multiprocess = multiprocess()
        # In multi-process mode the values live in files: nothing is registered, the scrape
        # reads the directory. Otherwise this app's own registry (no process-wide state).
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        self.routes = frozenset(routes)
        # The recording objects by the raw facts of a request (label values mapped once).
        self.http_by: dict[tuple[str, int], list[float]] = {}
        # Answered HTTP requests since the last flush (never replaced: ``flush`` empties it).
        self.http_records: list[HttpRecord] = []
        self._call_series: dict[tuple[object, ...], list[float]] = {}
        self._stream_series: dict[tuple[str, str, str], Streams] = {}
        self._spend: dict[tuple[str, str], SpendTally] = {}
        self._attempt: dict[tuple[str, str], list[float]] = {}
        # Finished served calls since the last flush (never replaced: ``flush`` empties it).
        self.calls: list[CallRecord] = []
        # (endpoint, deployment, provider, model, status, project) → ``CallSeries``
        self.calls_by: dict[tuple[object, ...], CallSeries] = {}
        self._http(reg)
        self._calls(reg)
        self._upstream(reg)
        self._state(reg)
        self._guardrails(reg)
        # HTTP requests in flight in this process, read at each flush: the app's front door
        # counts them anyway (``server.middleware.Front`` sets this), so a request pays nothing.
        self.in_flight_of: Callable[[], int] = _none_in_flight
        tallies: list[Flushable] = []
        self._tallies = tallies
        self.http_duration_of = Children(self.http_duration, HistogramTally, tallies)
        self.duration_of = Children(self.duration, HistogramTally, tallies)
        self.ttft_of = Children(self.ttft, HistogramTally, tallies)
        self.inter_token_of = Children(self.inter_token, HistogramTally, tallies)
        self.output_rate_of = Children(self.output_rate, HistogramTally, tallies)
        self.attempts_of = Children(self.attempts, HistogramTally, tallies)
        self.failovers_of = Children(self.failovers, CounterTally, tallies)
        self.model_refusals_of = Children(self.model_refusals, CounterTally, tallies)
        self.verdicts_of = Children(self.verdicts, CounterTally, tallies)
        self.guard_duration_of = Children(self.guard_duration, HistogramTally, tallies)

    def _http(self, reg: CollectorRegistry | None) -> None:
        http_labels = ("route", "status_class")
        self.http_requests = Counter(
            "modelyard_http_requests", "HTTP requests answered", http_labels, registry=reg
        )
        self.http_duration = Histogram(
            "modelyard_http_request_duration_seconds",
            "HTTP request duration, to the end of the body (a stream's end)",
            http_labels,
            buckets=_LATENCY,
            registry=reg,
        )
        self.in_flight = Gauge(
            "modelyard_in_flight_requests",
            "HTTP requests being answered",
            registry=reg,
            multiprocess_mode="livesum",
        )

    def _calls(self, reg: CollectorRegistry | None) -> None:
        call = ("route", "deployment", "provider", "model", "status_class")
        self.requests = Counter(
            "modelyard_requests", "Model calls finished by the pipeline", call, registry=reg
        )
        self.duration = Histogram(
            "modelyard_request_duration_seconds",
            "Model call duration, admission to the end of the answer",
            call,
            buckets=_LATENCY,
            registry=reg,
        )
        served = ("deployment", "provider", "model")
        self.ttft = Histogram(
            "modelyard_time_to_first_token_seconds",
            "Time from admission to the first token of an answer",
            served,
            buckets=_TTFT,
            registry=reg,
        )
        self.inter_token = Histogram(
            "modelyard_inter_token_latency_seconds",
            "Mean time between streamed tokens, one observation per stream",
            served,
            buckets=_GAP,
            registry=reg,
        )
        self.model_refusals = Counter(
            "modelyard_model_refusals",
            "Answers in which the model declined (a refusal), by the target that answered",
            served,
            registry=reg,
        )
        self.output_rate = Histogram(
            "modelyard_output_tokens_per_second",
            "Output tokens per second after the first token, one observation per answer "
            "(local models included: provider local)",
            served,
            buckets=_RATE,
            registry=reg,
        )

    def _upstream(self, reg: CollectorRegistry | None) -> None:
        self.attempts = Histogram(
            "modelyard_upstream_attempt_duration_seconds",
            "Upstream attempts by provider and outcome (ok or the error's code)",
            ("provider", "outcome"),
            buckets=_LATENCY,
            registry=reg,
        )
        self.failovers = Counter(
            "modelyard_failovers",
            "Calls answered after more than one attempt",
            ("deployment",),
            registry=reg,
        )
        self.tokens = Counter(
            "modelyard_tokens",
            "Tokens by deployment, project and kind (input includes cached, output reasoning)",
            ("deployment", "project", "kind"),
            registry=reg,
        )
        self.cost = Counter(
            "modelyard_cost_usd",
            "Cost in US dollars by deployment and project",
            ("deployment", "project"),
            registry=reg,
        )
        self.refusals = Counter(
            "modelyard_limiter_refusals",
            "Calls refused by limits or budgets, by kind",
            ("kind",),
            registry=reg,
        )

    def _state(self, reg: CollectorRegistry | None) -> None:
        self.breaker = Gauge(
            "modelyard_breaker_state",
            "Circuit breaker per target: 0 closed, 1 half-open, 2 open (highest of the workers)",
            ("target",),
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.breaker_transitions = Counter(
            "modelyard_breaker_transitions",
            "Circuit breaker state changes per target",
            ("target", "to"),
            registry=reg,
        )
        self.ledger_pending = Gauge(
            "modelyard_ledger_pending_rows",
            "Usage ledger rows queued, not yet written",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.ledger_lag = Gauge(
            "modelyard_ledger_lag_seconds",
            "Age of the oldest usage ledger row still queued (0 when none)",
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.ledger_dropped = Gauge(
            "modelyard_ledger_dropped_rows",
            "Usage ledger rows dropped because the queue was full (must stay 0)",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.local_queue = Gauge(
            "modelyard_local_queue_depth",
            "Requests waiting in the embedded model's queue, per local model",
            ("model",),
            registry=reg,
            multiprocess_mode="livemax",
        )

    def _guardrails(self, reg: CollectorRegistry | None) -> None:
        self.verdicts = Counter(
            "modelyard_guardrail_verdicts",
            "Calls with a guardrail verdict, by guard, phase, action (block, redact, flag) and "
            "category (names from the config and the guards' fixed categories)",
            ("guard", "phase", "action", "category"),
            registry=reg,
        )
        self.guard_duration = Histogram(
            "modelyard_guardrail_duration_seconds",
            "Time the guards spent screening one call (all phases), by policy",
            ("policy",),
            buckets=_GUARD,
            registry=reg,
        )

    def guarded(
        self, policy: str, verdicts: Iterable[tuple[str, str, str, str]], seconds: float
    ) -> None:
        """One guarded call: its policy, its verdicts' (guard, phase, action, category), and
        the guards' screening time."""
        for labels in verdicts:
            self.verdicts_of(*labels).pending += 1
        self.guard_duration_of(policy).observe(seconds)

    def route_of(self, path: str) -> str:
        return path if path in self.routes else OTHER

    def http(self, path: str, status: int, seconds: float) -> None:
        """One HTTP request answered; ``path`` is the matched route's template or the raw path
        (a refusal before routing: kept only when it is a route of ours, a bounded key). The
        front door appends its templates to ``http_records`` itself."""
        self.http_records.append((path if path in self.routes else "", status, seconds))

    def http_seen(self, path: str, status: int) -> list[float]:
        """The durations list of HTTP requests of a route template and status, made on first
        use (``http_by``'s)."""
        route = path if path in self.routes else OTHER
        key = (route, status_class(status))
        seen = self._calls_seen(self.http_duration_of(*key), self.http_requests, key)
        self.http_by[path, status] = seen
        return seen

    def call(
        self, endpoint: str, served: tuple[str, str, str], status: int, seconds: float
    ) -> None:
        """One finished model call of an endpoint (one of ours: a bounded key), served
        (deployment, provider, model) triple and status."""
        self._call_seen(endpoint, served, status).append(seconds)

    def _call_seen(self, endpoint: str, served: tuple[str, str, str], status: int) -> list[float]:
        key = (endpoint, served, status)
        seen = self._call_series.get(key)
        if seen is None:
            route = endpoint if endpoint in self.routes else OTHER
            labels = (route, *served, status_class(status))
            seen = self._calls_seen(self.duration_of(*labels), self.requests, labels)
            self._call_series[key] = seen
        return seen

    @staticmethod
    def _calls_seen(
        tally: HistogramTally, counter: Counter, labels: tuple[str, ...]
    ) -> list[float]:
        """The durations list of a calls histogram, its counter set as the companion."""
        if tally.counter is None:
            tally.counter = counter.labels(*labels)
        return tally.seen

    def streams(self, served: tuple[str, str, str]) -> Streams:
        series = self._stream_series.get(served)
        if series is None:
            series = self._stream_series[served] = Streams(self, *served)
        return series

    def spend(self, deployment: str, project: str) -> SpendTally:
        series = self._spend.get((deployment, project))
        if series is None:
            tokens = tuple(self.tokens.labels(deployment, project, k) for k in TOKEN_KINDS)
            series = SpendTally(tokens, self.cost.labels(deployment, project))
            self._spend[deployment, project] = series
            self._tallies.append(series)
        return series

    def call_series(self, key: tuple[object, ...]) -> CallSeries:
        """The ``CallSeries`` of ``key`` (``calls_by``'s), made on first use (by the flush:
        it looks in ``calls_by`` itself and comes here only when it is missing)."""
        endpoint, deployment, provider, model, status, project = key
        assert isinstance(endpoint, str) and isinstance(status, int)  # our own
        served = (str(deployment), str(provider), str(model))
        seen = self._call_seen(endpoint, served, status)
        attempts = self._attempt.get((served[1], "ok"))
        if attempts is None:
            attempts = self._attempt[served[1], "ok"] = self.attempts_of(served[1], "ok").seen
        series = CallSeries(seen, attempts, self.spend(served[0], str(project)))
        self.calls_by[key] = series
        return series

    def attempt(self, provider: str, outcome: str, seconds: float) -> None:
        """One upstream attempt's duration, by provider and outcome (``ok`` or an error type)."""
        seen = self._attempt.get((provider, outcome))
        if seen is None:
            seen = self._attempt[provider, outcome] = self.attempts_of(provider, outcome).seen
        seen.append(seconds)

    def breaker_changed(self, target: str, state: str) -> None:
        self.breaker.labels(target).set(BREAKER_VALUES.get(state, 0.0))
        self.breaker_transitions.labels(target, state).inc()

    def flush(self) -> None:
        """Hand what was recorded since the last flush to prometheus-client (on the event
        loop: each second, and before a scrape)."""
        self._flush_calls()
        self._flush_http()
        for tally in self._tallies:
            tally.flush()
        self.in_flight.set(self.in_flight_of())

    def _flush_calls(self) -> None:
        """The finished calls, grouped by label set (sorted and grouped in C), into their
        series' tallies: per label set a few lines of Python, per call none."""
        calls = self.calls
        if not calls:
            return
        calls.sort(key=_CALL_KEY)
        for key, group in groupby(calls, _CALL_KEY):
            series = self.calls_by.get(key) or self.call_series(key)
            *_, seconds, answered, usages, costs = zip(*group, strict=True)
            series.seconds.extend(seconds)
            series.attempts.extend(filter(_is_some, answered))
            series.spend.usages.extend(filter(_is_some, usages))
            series.spend.costs.extend(filter(None, costs))  # no price known: None; free: 0
        calls.clear()

    def _flush_http(self) -> None:
        """The answered HTTP requests, grouped by (route template, status) as the calls are."""
        records = self.http_records
        if not records:
            return
        records.sort(key=_HTTP_KEY)
        for (path, status), group in groupby(records, _HTTP_KEY):
            seen = self.http_by.get((path, status))
            if seen is None:  # (an emptied list is falsy: ``or`` would remake it each flush)
                seen = self.http_seen(path, status)
            seen.extend(map(_HTTP_SECONDS, group))
        records.clear()

    def render(self) -> tuple[bytes, str]:
        """Flush, then the exposition (see ``exposition``)."""
        self.flush()
        return self.exposition()

    def exposition(self) -> tuple[bytes, str]:
        """The exposition text and its content type: every worker's values in multi-process
        mode, this app's otherwise."""
        if not self.multiprocess:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped library
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """This worker is going away: its live gauges stop counting."""
        self.flush()
        directory = os.environ.get(MULTIPROC_ENV)
        if self.multiprocess and directory:
            mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]
