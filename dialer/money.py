"""Money as integers of 1/10,000 of the currency unit (DESIGN §10): exact, never floats."""

from __future__ import annotations

import math
import re
from decimal import Decimal

from dialer.errors import InvalidRequest

UNITS_PER_CURRENCY = 10_000
#: the largest amount the integer ledger takes (a balance, a top-up): 1,000,000,000.0000
MAX_AMOUNT = 1_000_000_000 * UNITS_PER_CURRENCY
#: the largest price of a started minute: 1,000.0000
MAX_PRICE = 1_000 * UNITS_PER_CURRENCY
_DECIMAL = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")  # ASCII digits only


def parse_money(value: str | int | float | Decimal, field: str = "amount") -> int:
    """Parse a plain decimal amount (``49.80``) to units; more than 4 decimals is refused, never rounded,
    and so is anything the ledger cannot hold (exponents, ``inf``, ``1_000``, more than ``MAX_AMOUNT``)."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{field}: not a decimal amount: {value!r}")
    text = str(value).strip()
    if not _DECIMAL.match(text):
        raise InvalidRequest(f"{field}: not a decimal amount (like 49.80): {value!r}")
    units = Decimal(text) * UNITS_PER_CURRENCY
    if units != units.to_integral_value():
        raise InvalidRequest(f"{field}: at most 4 decimals are allowed: {value}")
    if abs(units) > MAX_AMOUNT:
        raise InvalidRequest(f"{field}: at most {MAX_AMOUNT // UNITS_PER_CURRENCY} is allowed: {value}")
    return int(units)


def format_money(units: int) -> str:
    """Units as a decimal string with at least 2 decimals: 498000 -> "49.80", 135 -> "0.0135"."""
    dec = Decimal(units) / UNITS_PER_CURRENCY
    text = f"{dec:.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def call_cost(duration_s: int, price_per_minute: int) -> int:
    """Cost of a call: every started minute at the provider's price; 0 s costs nothing."""
    if duration_s <= 0:
        return 0
    return math.ceil(duration_s / 60) * price_per_minute


def reservation(max_call_seconds: int, price_per_minute: int) -> int:
    """What one dial reserves: the cost of a call of maximum length."""
    return call_cost(max_call_seconds, price_per_minute)
