"""One-hour cache writes are priced at their own rate: the price data's, the config's, else the
vendor's documented multiple of the input price, else (a vendor with no rule) the write rate."""

from __future__ import annotations

from decimal import Decimal

from modelyard.catalog import build_catalog, cost_micros
from modelyard.catalog.pricing import ModelPrices, Tiered, one_hour_rule, with_one_hour_rule
from modelyard.config.schema import PriceConfig
from modelyard.core.chat import Usage

D = Decimal

# Claude Sonnet's list prices: input 3, five-minute write 3.75 (1.25x), one-hour write 6 (2x).
SONNET = ModelPrices(D(3), D(15), cached_input=D("0.3"), cache_write=D("3.75"), cache_write_1h=D(6))


def test_one_hour_writes_cost_the_one_hour_rate_and_the_rest_the_five_minute_rate():
    usage = Usage(
        input_tokens=10_000,
        output_tokens=1_000,
        cached_input_tokens=2_000,
        cache_write_tokens=5_000,
        cache_write_1h_tokens=4_000,
    )
    # 3000 fresh * 3 + 2000 * 0.3 + 1000 (5m) * 3.75 + 4000 (1h) * 6 + 1000 * 15
    assert cost_micros(SONNET, usage) == 9_000 + 600 + 3_750 + 24_000 + 15_000


def test_the_same_writes_cost_more_for_an_hour_than_for_five_minutes():
    five = Usage(input_tokens=100_000, output_tokens=10, cache_write_tokens=100_000)
    hour = Usage(
        input_tokens=100_000,
        output_tokens=10,
        cache_write_tokens=100_000,
        cache_write_1h_tokens=100_000,
    )
    assert (cost_micros(SONNET, five), cost_micros(SONNET, hour)) == (375_150, 600_150)


def test_the_exact_decimal_path_prices_one_hour_writes_too():
    # A rate finer than 10^-9 $/Mtok leaves the integer path.
    prices = ModelPrices(D("0.0000000001"), D(1), cache_write=D(2), cache_write_1h=D(5))
    usage = Usage(input_tokens=300, cache_write_tokens=300, cache_write_1h_tokens=100)
    assert prices.integer_rates is None
    assert cost_micros(prices, usage) == 200 * 2 + 100 * 5


def test_a_tiered_one_hour_rate_takes_the_tier_of_the_whole_input():
    prices = ModelPrices(
        Tiered(D(3), ((200_000, D(6)),)),
        Tiered(D(15), ((200_000, D("22.5")),)),
        cache_write=Tiered(D("3.75"), ((200_000, D("7.5")),)),
        cache_write_1h=Tiered(D(6), ((200_000, D(12)),)),
    )
    small = Usage(input_tokens=1_000, cache_write_tokens=1_000, cache_write_1h_tokens=1_000)
    large = Usage(input_tokens=300_000, cache_write_tokens=100_000, cache_write_1h_tokens=100_000)
    assert cost_micros(prices, small) == 6_000
    assert cost_micros(prices, large) == 200_000 * 6 + 100_000 * 12


def test_without_a_one_hour_rate_a_one_hour_write_costs_the_write_rate():
    prices = ModelPrices(D(1), D(1), cache_write=D("1.25"))
    usage = Usage(input_tokens=1_000, cache_write_tokens=1_000, cache_write_1h_tokens=1_000)
    assert cost_micros(prices, usage) == 1_250


def test_more_one_hour_writes_than_writes_are_counted_as_the_writes():
    usage = Usage(input_tokens=1_000, cache_write_tokens=100, cache_write_1h_tokens=500)
    # 900 fresh * 3 + 100 (1h) * 6; never a negative five-minute part
    assert cost_micros(SONNET, usage) == 2_700 + 600


def test_the_vendor_rule_is_twice_the_input_for_claude_only():
    assert one_hour_rule("anthropic", "claude-sonnet-4-0") == 2
    assert one_hour_rule("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0") == 2
    assert one_hour_rule("aws", "regional.anthropic.claude-3-5-haiku-20241022-v1:0") == 2
    assert one_hour_rule("bedrock", "amazon.nova-pro-v1:0") is None
    assert one_hour_rule("openai", "gpt-4o") is None
    tiered = ModelPrices(Tiered(D(3), ((200_000, D(6)),)), D(15))
    filled = with_one_hour_rule(tiered, "anthropic", "claude-sonnet-4-5")
    assert filled.cache_write_1h == Tiered(D(6), ((200_000, D(12)),))
    assert with_one_hour_rule(SONNET, "anthropic", "x") is SONNET  # its own rate is kept


def test_the_catalog_takes_the_price_datas_one_hour_rate():
    prices = build_catalog().price("anthropic", "anthropic", "claude-sonnet-4-0")
    assert prices is not None
    assert (prices.input, prices.cache_write, prices.cache_write_1h) == (D(3), D("3.75"), D(6))


def test_where_the_data_has_no_one_hour_rate_claude_gets_twice_its_input():
    # genai-prices lists this Bedrock Claude with a write price but no one-hour one.
    prices = build_catalog().price(
        "bedrock", "bedrock", "anthropic.claude-3-7-sonnet-20250219-v1:0"
    )
    assert prices is not None
    assert (prices.input, prices.cache_write, prices.cache_write_1h) == (D(3), D("3.75"), D(6))


def test_a_vendor_without_one_hour_writes_keeps_no_one_hour_rate():
    prices = build_catalog().price("openai", "openai", "gpt-4o")
    assert prices is not None and prices.cache_write_1h is None


def test_a_config_price_sets_the_one_hour_rate_else_the_vendor_rule_completes_it():
    catalog = build_catalog(
        {
            "claude/claude-sonnet-4-0": PriceConfig(input=2, output=10, cache_write=2.5),
            "claude/claude-opus-4-1": PriceConfig(input=10, output=50, cache_write_1h=15),
            "vllm/claude-sonnet-4-0": PriceConfig(input=2, output=10, cache_write=2.5),
        },
        {"claude": "anthropic", "vllm": "vllm"},
    )
    ruled = catalog.price("claude", "anthropic", "claude-sonnet-4-0")
    own = catalog.price("claude", "anthropic", "claude-opus-4-1")
    unknown = catalog.price("vllm", "vllm", "claude-sonnet-4-0")
    assert ruled is not None and own is not None and unknown is not None
    assert (ruled.cache_write_1h, ruled.source) == (D(4), "config")  # 2 x the config's input
    assert catalog.price("claude", "anthropic", "claude-sonnet-4-0") is ruled  # made at build
    assert own.cache_write_1h == D(15)
    assert unknown.cache_write_1h is None  # no rule for a self-hosted server: the write rate
    usage = Usage(input_tokens=1_000, cache_write_tokens=1_000, cache_write_1h_tokens=1_000)
    assert (cost_micros(ruled, usage), cost_micros(unknown, usage)) == (4_000, 2_500)
