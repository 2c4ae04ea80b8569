"""Exact cost in micro-dollars: inclusive usage, fallbacks, one rounding, tiers, schedules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from modelyard.catalog import ModelPrices, PricePeriod, PriceSchedule, Tiered, cost_micros
from modelyard.core.chat import Usage

D = Decimal


def test_cached_input_cache_write_and_reasoning_each_at_their_rate():
    prices = ModelPrices(D(3), D(15), cached_input=D("0.3"), cache_write=D("3.75"), reasoning=D(60))
    usage = Usage(
        input_tokens=10_000,
        cached_input_tokens=2_000,
        cache_write_tokens=1_000,
        output_tokens=3_000,
        reasoning_tokens=1_000,
    )
    # 7000*3 + 2000*0.3 + 1000*3.75 + 2000*15 + 1000*60
    assert cost_micros(prices, usage) == 21_000 + 600 + 3_750 + 30_000 + 60_000


def test_missing_rates_fall_back_to_input_and_output():
    prices = ModelPrices(D("2.5"), D(10))
    usage = Usage(
        input_tokens=1_000,
        cached_input_tokens=400,
        cache_write_tokens=100,
        output_tokens=50,
        reasoning_tokens=20,
    )
    # every input token at 2.5, every output token at 10
    assert cost_micros(prices, usage) == 2_500 + 500


def test_cached_tokens_cost_less_than_fresh_ones():
    prices = ModelPrices(D(1), D(1), cached_input=D("0.1"))
    fresh = cost_micros(prices, Usage(input_tokens=1_000_000))
    cached = cost_micros(prices, Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000))
    assert (fresh, cached) == (1_000_000, 100_000)


def test_rounds_once_half_up_at_the_end():
    prices = ModelPrices(D("0.4"), D("0.4"))
    # 0.4 + 0.4 = 0.8 micro-dollars: one rounding gives 1; rounding each part would give 0.
    assert cost_micros(prices, Usage(input_tokens=1, output_tokens=1)) == 1
    assert cost_micros(ModelPrices(D("0.5"), D(0)), Usage(input_tokens=1)) == 1
    assert cost_micros(ModelPrices(D("0.5"), D(0)), Usage(input_tokens=3)) == 2
    assert cost_micros(ModelPrices(D("0.4"), D(0)), Usage(input_tokens=1)) == 0


def test_inconsistent_usage_never_costs_less_than_zero():
    prices = ModelPrices(D(1), D(1), cached_input=D("0.5"))
    usage = Usage(input_tokens=10, cached_input_tokens=20, output_tokens=0, reasoning_tokens=5)
    assert cost_micros(prices, usage) == 10 + 5


def test_a_tier_applies_above_its_threshold_to_every_token():
    prices = ModelPrices(
        Tiered(D(3), ((200_000, D(6)),)),
        Tiered(D(15), ((200_000, D("22.5")),)),
        cached_input=Tiered(D("0.3"), ((200_000, D("0.6")),)),
    )
    at_threshold = Usage(input_tokens=200_000, output_tokens=1_000)
    assert cost_micros(prices, at_threshold) == 600_000 + 15_000
    above = Usage(input_tokens=200_001, cached_input_tokens=100_000, output_tokens=1_000)
    assert cost_micros(prices, above) == 100_001 * 6 + 60_000 + 22_500


def test_schedule_takes_the_last_active_period_else_the_first():
    standard = ModelPrices(D(1), D(2))
    peak = ModelPrices(D(4), D(8))
    raised = ModelPrices(D(5), D(10))
    schedule = PriceSchedule(
        (
            PricePeriod(standard),
            PricePeriod(peak, daily=(time(1), time(4))),
            PricePeriod(raised, start=date(2030, 1, 1)),
        )
    )
    assert schedule.at(datetime(2029, 5, 1, 0, 30, tzinfo=UTC)) is standard
    assert schedule.at(datetime(2029, 5, 1, 2, 0, tzinfo=UTC)) is peak
    assert schedule.at(datetime(2029, 5, 1, 4, 0, tzinfo=UTC)) is standard
    assert schedule.at(datetime(2030, 1, 1, 0, 0, tzinfo=UTC)) is raised


def test_a_daily_window_may_cross_midnight():
    night = ModelPrices(D(1), D(1))
    day = ModelPrices(D(2), D(2))
    schedule = PriceSchedule((PricePeriod(day), PricePeriod(night, daily=(time(22), time(6)))))
    assert schedule.at(datetime(2029, 1, 1, 23, tzinfo=UTC)) is night
    assert schedule.at(datetime(2029, 1, 1, 5, tzinfo=UTC)) is night
    assert schedule.at(datetime(2029, 1, 1, 12, tzinfo=UTC)) is day


def test_the_integer_fast_path_equals_the_exact_decimal_sum():
    import random
    from decimal import ROUND_HALF_UP, Decimal

    from modelyard.catalog.pricing import ModelPrices, cost_micros
    from modelyard.core.chat import Usage

    rng = random.Random(7)
    for _ in range(2000):
        rates = [
            Decimal(rng.randint(0, 10**7)) / Decimal(10 ** rng.randint(0, 12)) for _ in range(6)
        ]
        optional = [r if rng.random() < 0.7 else None for r in rates[2:]]
        prices = ModelPrices(
            rates[0], rates[1], optional[0], optional[1], optional[2], cache_write_1h=optional[3]
        )
        inp, out = rng.randint(0, 10**6), rng.randint(0, 10**5)
        cached, written = rng.randint(0, inp // 2), rng.randint(0, inp // 4)
        hour = rng.randint(0, written)
        usage = Usage(inp, out, cached, written, rng.randint(0, out), hour)
        fresh = inp - cached - written
        visible = out - usage.reasoning_tokens
        write_rate = optional[1] if optional[1] is not None else rates[0]
        expected = (
            fresh * rates[0]
            + cached * (optional[0] if optional[0] is not None else rates[0])
            + (written - hour) * write_rate
            + hour * (optional[3] if optional[3] is not None else write_rate)
            + visible * rates[1]
            + usage.reasoning_tokens * (optional[2] if optional[2] is not None else rates[1])
        )
        assert cost_micros(prices, usage) == int(expected.quantize(Decimal(1), ROUND_HALF_UP))


def test_input_and_output_alone_cost_the_exact_decimal_sum():
    """The plain shape (no cached, cache-write or reasoning tokens) has its own short path."""
    import random
    from decimal import ROUND_HALF_UP, Decimal

    from modelyard.catalog.pricing import ModelPrices, cost_micros
    from modelyard.core.chat import Usage

    rng = random.Random(11)
    for _ in range(2000):
        rates = [Decimal(rng.randint(0, 10**7)) / Decimal(10 ** rng.randint(0, 12)) for _ in "io"]
        prices = ModelPrices(rates[0], rates[1], Decimal(0), Decimal(0), Decimal(0))
        inp, out = rng.randint(0, 10**6), rng.randint(0, 10**5)
        expected = inp * rates[0] + out * rates[1]
        assert cost_micros(prices, Usage(inp, out)) == int(
            expected.quantize(Decimal(1), ROUND_HALF_UP)
        )
    # Counts a broken codec made negative cost nothing, as on the general path.
    assert cost_micros(ModelPrices(Decimal(1), Decimal(2)), Usage(-5, 3)) == 6
