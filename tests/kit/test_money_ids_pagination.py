from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from textbridge.kit.ids import id_ceiling, id_floor, new_id
from textbridge.kit.money import from_micros, to_micros
from textbridge.kit.pagination import InvalidCursor, decode_cursor, encode_cursor


def test_money_round_trips_six_decimals() -> None:
    assert to_micros("0.15") == 150_000
    assert to_micros(Decimal("1000000")) == 1_000_000_000_000
    assert to_micros("0.0000005") == 1  # half up
    assert from_micros(150_000) == 0.15
    with pytest.raises(ValueError, match="not a number"):
        to_micros("ten")
    with pytest.raises(ValueError, match="finite"):
        to_micros("NaN")


@given(st.decimals(min_value=0, max_value=10**9, places=6))
def test_money_is_exact_to_the_micro(amount: Decimal) -> None:
    assert Decimal(to_micros(amount)) / 10**6 == amount


def test_ids_sort_by_time_and_bound_time_ranges() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=5)
    made = new_id()
    after = datetime.now(UTC) + timedelta(milliseconds=5)
    assert len(made) == 26
    assert id_floor(before) <= made <= id_ceiling(after)
    assert not id_floor(after) <= made


def test_cursors_round_trip_and_reject_garbage() -> None:
    made = new_id()
    assert decode_cursor(encode_cursor(made)) == made
    for bad in ["***", "bm90IGFuIGlk!", encode_cursor("a b"), "\u00f1\u00ad"]:
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)
