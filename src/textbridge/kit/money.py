"""Money is stored as integer micro-units (1/1,000,000 of the currency unit).

Integers keep SQLite and PostgreSQL exact and identical; the API speaks decimal numbers.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICROS = 1_000_000


def to_micros(amount: Decimal | float | int | str) -> int:
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {amount!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite number: {amount!r}")
    return int((value * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_micros(micros: int) -> float:
    """For JSON answers: 150000 -> 0.15 (exact for six decimals)."""
    return round(micros / MICROS, 6)
