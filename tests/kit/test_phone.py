from __future__ import annotations

import pytest

from textbridge.kit.phone import InvalidPhoneNumber, number_type, parse_phone


@pytest.mark.parametrize(
    ("raw", "e164", "region", "country"),
    [
        ("+14155550100", "+14155550100", "US", "United States"),
        ("14155550100", "+14155550100", "US", "United States"),  # TextBoost: no plus
        ("+1 (415) 555-0100", "+14155550100", "US", "United States"),
        ("0038 1690156360", "+381690156360", "RS", "Serbia"),
        ("+447911123456", "+447911123456", "GG", "Guernsey"),  # the documented quirk
        ("+31612345678", "+31612345678", "NL", "Netherlands"),
    ],
)
def test_numbers_parse_to_e164_with_region_and_country(
    raw: str, e164: str, region: str, country: str
) -> None:
    phone = parse_phone(raw)
    assert (phone.e164, phone.region, phone.country) == (e164, region, country)
    assert phone.digits == e164[1:]


@pytest.mark.parametrize(
    "raw", ["", "12", "abc", "+1415555010", "+999999999", "+14155550100x", "+" + "1" * 20]
)
def test_invalid_numbers_are_refused_with_the_number(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        parse_phone(raw)
    assert repr(raw) in str(caught.value)


def test_number_type() -> None:
    assert number_type("+381690156360") == "mobile"
    assert number_type("+442079460958") == "fixed_line"
