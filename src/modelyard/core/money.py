"""Money as integer micro-dollars: no float ever carries a price or a cost."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MICROS_PER_DOLLAR = 1_000_000


def dollars_to_micros(dollars: Decimal | str | int) -> int:
    """Convert a dollar amount to whole micro-dollars, rounding half up."""
    value = Decimal(dollars) * MICROS_PER_DOLLAR
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def micros_to_dollars(micros: int) -> Decimal:
    return Decimal(micros) / MICROS_PER_DOLLAR


def cost_micros(tokens: int, micros_per_million_tokens: int) -> int:
    """Cost of ``tokens`` at a price per million tokens, rounded half up to a micro-dollar."""
    numerator = tokens * micros_per_million_tokens
    return (numerator + 500_000) // 1_000_000
