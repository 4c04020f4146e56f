"""Phone numbers: parse anything a client sends into E.164 with its region and country name.

``phonenumbers`` does the parsing and validation. Country names come from ``pycountry`` rather
than ``phonenumbers.geocoder``, which costs ~97 MB per process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import pycountry
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

_STRIP = str.maketrans("", "", " -().\u00a0\t")
_DIALLED = re.compile(r"[\d\s().-]+")  # a number as dialled: no letters, no +

NUMBER_TYPE_NAMES = {
    value: name.lower()
    for name, value in vars(PhoneNumberType).items()
    if not name.startswith("_") and isinstance(value, int)
}


class InvalidPhoneNumber(ValueError):
    def __init__(self, raw: str, reason: str = "is not a valid phone number") -> None:
        super().__init__(f"{raw!r} {reason}")
        self.raw = raw
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str
    region: str  # ISO 3166-1 alpha-2, e.g. "RS"; "001" for non-geographic numbers
    country: str  # e.g. "Serbia"

    @property
    def digits(self) -> str:
        """E.164 without the plus, as TextBoost writes numbers."""
        return self.e164[1:]


@lru_cache(maxsize=512)
def country_name(region: str) -> str:
    country = pycountry.countries.get(alpha_2=region)
    if country is None:
        return region
    return str(getattr(country, "common_name", None) or country.name)


@lru_cache(maxsize=65_536)
def parse_phone(raw: str) -> Phone:
    """Parse an international number, with or without the leading ``+`` (or ``00``).

    Raises ``InvalidPhoneNumber`` for anything that is not a valid, dialable number.
    """
    cleaned = raw.strip().translate(_STRIP)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    elif not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    if not cleaned[1:].isdigit() or not 8 <= len(cleaned) <= 16:
        raise InvalidPhoneNumber(raw)
    try:
        number = phonenumbers.parse(cleaned, None)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(raw) from exc
    # What is_valid_number does, without finding the region twice (a third of the cost).
    region = phonenumbers.region_code_for_number(number)
    if region is None or not phonenumbers.is_valid_number_for_region(number, region):
        raise InvalidPhoneNumber(raw)
    return Phone(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        region=region,
        country=country_name(region),
    )


def parse_national(raw: str, region: str) -> Phone:
    """A number as dialled inside ``region`` ("0690156360" in FR), or an international one.

    Digits and punctuation only: ``phonenumbers`` reads letters as a keypad's, and a sender
    name such as "415SHOPNOW" would become +14157467669. Raises ``InvalidPhoneNumber``."""
    if not _DIALLED.fullmatch(raw):
        raise InvalidPhoneNumber(raw)
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(raw)
    return parse_phone(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def is_region(code: str) -> bool:
    """Whether ``code`` is a region phone numbers can belong to (ISO 3166-1 alpha-2 mostly)."""
    return code in phonenumbers.SUPPORTED_REGIONS


def number_type(e164: str) -> str:
    """``mobile``, ``fixed_line``, ``premium_rate``... of an already valid number."""
    return NUMBER_TYPE_NAMES.get(phonenumbers.number_type(phonenumbers.parse(e164)), "unknown")
