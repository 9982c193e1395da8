"""Money as Decimal, never float: cents must add up."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    """Round half up to whole cents, the way a till does (not banker's rounding)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def as_text(amount: Decimal) -> str:
    """A JSON-safe amount: a string keeps every digit a float would lose."""
    return str(to_cents(amount))
