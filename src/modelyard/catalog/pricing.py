"""Prices of a model and the exact cost of a call.

Prices are ``Decimal`` dollars per million tokens, exactly as the source states them. A price in
dollars per million tokens times a token count is a cost in micro-dollars, so
:func:`cost_micros` adds exact products and rounds once, half up, at the end.

Usage is inclusive (see ``core.chat.Usage``): ``input_tokens`` includes cached reads and cache
writes, ``output_tokens`` includes reasoning. A missing cached-input or cache-write price falls
back to the input price, a missing reasoning price to the output price.

Cache writes are billed by their lifetime: ``cache_write`` prices the five-minute writes (and a
vendor's only kind), ``cache_write_1h`` the one-hour writes (``Usage.cache_write_1h_tokens``, a
part of ``cache_write_tokens``). A missing one-hour price falls back to the cache-write price: the
catalog fills it first from the vendor's documented rule where it knows one
(:func:`with_one_hour_rule`), so the fallback is reached only for vendors without one.

Tiered prices ("every token of a request whose prompt exceeds N tokens costs more") pick their
tier by the request's whole input (``input_tokens``, cached and cache-write tokens included): a
tier applies when the input is strictly above its threshold, and then to every token of the
request, input and output alike. This is the rule of the vendors that publish such prices and of
``genai-prices``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from modelyard.core.chat import Usage


@dataclass(frozen=True, slots=True)
class Tiered:
    """A price that changes with the prompt size: ``tiers`` are (threshold, price), ascending."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...]

    def at(self, input_tokens: int) -> Decimal:
        for threshold, price in reversed(self.tiers):
            if input_tokens > threshold:
                return price
        return self.base


Rate = Decimal | Tiered


def rate_at(rate: Rate, input_tokens: int) -> Decimal:
    return rate.at(input_tokens) if isinstance(rate, Tiered) else rate


def base_rate(rate: Rate) -> Decimal:
    return rate.base if isinstance(rate, Tiered) else rate


# Flat prices as integers of 10^-9 dollars per million tokens: the same exact sum as with
# Decimals, at a fraction of the cost (metering prices every request, twice).
_SCALE = 10**9
IntegerRates = tuple[int, int, int, int, int, int]

# Vendors' documented price of a one-hour cache write, as a multiple of the input price:
# Anthropic's Claude, on its own API and on Bedrock, 2x the base input (five-minute writes 1.25x).
_ONE_HOUR_MULTIPLE: Final = Decimal(2)


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """Dollars per million tokens. ``source``: ``catalog``, ``config`` or ``local``.

    ``integer_rates`` is derived when the prices are made: (input, output, cached input, cache
    write, reasoning, one-hour cache write), fallbacks applied, in 10^-9 dollars per million
    tokens; None when a rate is tiered or finer than that (those are priced with Decimals)."""

    input: Rate
    output: Rate
    cached_input: Rate | None = None
    cache_write: Rate | None = None
    reasoning: Rate | None = None
    source: str = "catalog"
    cache_write_1h: Rate | None = None
    integer_rates: IntegerRates | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once per prices object (catalog build or reload), read on every request.
        object.__setattr__(self, "integer_rates", _integer_rates(self))

    @property
    def tiered(self) -> bool:
        return any(isinstance(r, Tiered) for r in self.rates().values())

    def rates(self) -> dict[str, Rate]:
        """The rates that are set, by name (``input``, ``output``, ``cached_input``, ...)."""
        named: dict[str, Rate | None] = {
            "input": self.input,
            "output": self.output,
            "cached_input": self.cached_input,
            "cache_write": self.cache_write,
            "reasoning": self.reasoning,
            "cache_write_1h": self.cache_write_1h,
        }
        return {name: rate for name, rate in named.items() if rate is not None}


def _integer_rates(prices: ModelPrices) -> IntegerRates | None:
    """``prices.integer_rates``, computed."""
    if prices.tiered:
        return None
    inp, out = prices.input, prices.output
    write = prices.cache_write if prices.cache_write is not None else inp
    named = (
        inp,
        out,
        prices.cached_input if prices.cached_input is not None else inp,
        write,
        prices.reasoning if prices.reasoning is not None else out,
        prices.cache_write_1h if prices.cache_write_1h is not None else write,
    )
    exact = [Decimal(r) * _SCALE for r in named]  # type: ignore[arg-type]
    if not all(v == v.to_integral_value() for v in exact):
        return None
    a, b, c, d, e, f = (int(v) for v in exact)
    return (a, b, c, d, e, f)


FREE = ModelPrices(Decimal(0), Decimal(0), source="local")


def cost_micros(prices: ModelPrices, usage: Usage) -> int:
    """The cost of ``usage`` at ``prices`` in integer micro-dollars (rounded once, half up)."""
    size = usage.input_tokens
    cached = usage.cached_input_tokens
    written = usage.cache_write_tokens
    reasoning = usage.reasoning_tokens
    fast = prices.integer_rates
    if fast is not None and not (cached or written or reasoning):
        # Most calls: input and output tokens alone, at flat prices.
        output = usage.output_tokens
        if size >= 0 and output >= 0:
            return (size * fast[0] + output * fast[1] + _SCALE // 2) // _SCALE
    # A codec that reports more cached than total input must not make the cost negative.
    fresh = max(usage.input_tokens - cached - written, 0)
    visible = max(usage.output_tokens - reasoning, 0)
    # The one-hour writes are a part of the writes: never more, never negative.
    hour = min(max(usage.cache_write_1h_tokens, 0), max(written, 0))
    written -= hour
    if fast is not None:
        scaled = (
            fresh * fast[0]
            + visible * fast[1]
            + cached * fast[2]
            + written * fast[3]
            + reasoning * fast[4]
            + hour * fast[5]
        )
        return (scaled + _SCALE // 2) // _SCALE
    input_rate = rate_at(prices.input, size)
    output_rate = rate_at(prices.output, size)
    write_rate = _or(prices.cache_write, input_rate, size)
    total = (
        fresh * input_rate
        + cached * _or(prices.cached_input, input_rate, size)
        + written * write_rate
        + hour * _or(prices.cache_write_1h, write_rate, size)
        + visible * output_rate
        + reasoning * _or(prices.reasoning, output_rate, size)
    )
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _or(rate: Rate | None, fallback: Decimal, size: int) -> Decimal:
    return fallback if rate is None else rate_at(rate, size)


def one_hour_rule(vendor: str, model: str) -> Decimal | None:
    """The vendor's documented one-hour cache-write price as a multiple of the input price, or
    None when we know no such rule. ``vendor`` is a provider type (``anthropic``, ``bedrock``)
    or genai-prices' provider id (``anthropic``, ``aws``); on Bedrock only Claude models have
    one-hour writes."""
    if vendor == "anthropic":
        return _ONE_HOUR_MULTIPLE
    if vendor in ("bedrock", "aws") and "claude" in model.lower():
        return _ONE_HOUR_MULTIPLE
    return None


def with_one_hour_rule(prices: ModelPrices, vendor: str, model: str) -> ModelPrices:
    """``prices`` with a one-hour cache-write price from the vendor's rule when they have none
    (the price data's or the config's own one-hour price is kept); unchanged otherwise."""
    if prices.cache_write_1h is not None:
        return prices
    multiple = one_hour_rule(vendor, model)
    if multiple is None:
        return prices
    return replace(prices, cache_write_1h=scaled(prices.input, multiple))


def scaled(rate: Rate, factor: Decimal) -> Rate:
    """``rate`` times ``factor``, tier by tier."""
    if isinstance(rate, Tiered):
        return Tiered(rate.base * factor, tuple((t, p * factor) for t, p in rate.tiers))
    return rate * factor


@dataclass(frozen=True, slots=True)
class PricePeriod:
    """Prices valid from ``start`` (a UTC date) and/or daily within ``daily`` (naive UTC times)."""

    prices: ModelPrices
    start: date | None = None
    daily: tuple[time, time] | None = None

    def active(self, when: datetime) -> bool:
        moment = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
        if self.start is not None and moment.date() < self.start:
            return False
        if self.daily is None:
            return True
        begin, end = self.daily
        now = moment.time()
        if end < begin:  # the window crosses midnight
            return now >= begin or now < end
        return begin <= now < end


@dataclass(frozen=True, slots=True)
class PriceSchedule:
    """A model's prices over time: the last active period wins, else the first one.

    Covers price changes announced for a date and daily off-peak windows (DeepSeek's).
    """

    periods: tuple[PricePeriod, ...]

    @classmethod
    def flat(cls, prices: ModelPrices) -> PriceSchedule:
        return cls((PricePeriod(prices),))

    def at(self, when: datetime | None = None) -> ModelPrices:
        moment = when or datetime.now(UTC)
        for period in reversed(self.periods):
            if period.active(moment):
                return period.prices
        return self.periods[0].prices


def dollars(value: float | int | str | Decimal) -> Decimal:
    """A config price (a float from YAML) as the decimal the operator wrote: ``0.1`` is 0.1,
    not the float's binary expansion, and ``2`` (read as 2.0) is 2."""
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    return exact.quantize(Decimal(1)) if exact == exact.to_integral_value() else exact.normalize()
