"""SMS alphabet choice, segment counting and splitting (3GPP TS 23.038 / 23.040).

A message goes as GSM-7 when every character is in the GSM 03.38 basic table or its
extension table (an extension character is sent as ESC + code and costs two septets);
otherwise the *whole* message goes as UCS-2, counted in UTF-16 code units (so an astral
character such as an emoji costs two).

Capacity per segment:

==================================  =============  ====================
case                                GSM-7 septets  UCS-2 (UTF-16 units)
==================================  =============  ====================
single message                      160            70
multipart, 8-bit concat reference   153            67
multipart, 16-bit concat reference  152            66
==================================  =============  ====================

Splitting follows what carriers bill: an escape pair never straddles two parts, a UTF-16
surrogate pair is never split, and in UCS-2 every grapheme cluster (ZWJ emoji, flags, skin
tones, base + combining marks) stays inside one part; only a cluster that by itself exceeds
a part's capacity is split, and then only between code points.

The text is never normalised: a decomposed accent (``e`` + U+0301) is not GSM and forces
UCS-2, exactly as the handset or carrier would see it.

This module is domain-free: it imports only the standard library, ``gsm0338`` and ``regex``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import gsm0338  # noqa: F401  (importing it registers the "gsm03.38" codec)
import regex  # type: ignore[import-untyped,unused-ignore]

__all__ = ["Encoding", "Segmentation", "is_gsm7", "segment", "smart_encode"]


class Encoding(StrEnum):
    """Data coding of a whole message."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text is encoded and split into SMS segments."""

    encoding: Encoding
    #: The text of each segment; ``"".join(parts)`` is the original text.
    parts: tuple[str, ...]
    #: Septets (GSM-7; an extension character costs 2) or UTF-16 code units (UCS-2)
    #: of the whole text.
    units: int
    #: ``len(text)``, in code points.
    characters: int

    @property
    def segments(self) -> int:
        """Number of segments (billable parts)."""
        return len(self.parts)


# --- GSM 03.38 tables, read once from the codec (never hand-typed) -------------------------

_ESC: Final = 0x1B
_CODEC: Final = "gsm03.38"


def _decode_table(prefix: bytes) -> frozenset[str]:
    chars: set[str] = set()
    for code in range(0x80):
        if code == _ESC:  # ESC is the escape to the extension table, not a character
            continue
        try:
            decoded = (prefix + bytes((code,))).decode(_CODEC)
        except UnicodeDecodeError:  # unassigned extension code
            continue
        if len(decoded) == 1:
            chars.add(decoded)
    return frozenset(chars)


_GSM_BASIC: Final[frozenset[str]] = _decode_table(b"")
_GSM_EXTENSION: Final[frozenset[str]] = _decode_table(bytes((_ESC,))) - _GSM_BASIC
_GSM_ALL: Final[frozenset[str]] = _GSM_BASIC | _GSM_EXTENSION
_GSM_EXTENSION_CHARS: Final[tuple[str, ...]] = tuple(sorted(_GSM_EXTENSION))

_GSM7_SINGLE: Final = 160
_GSM7_PART_8BIT: Final = 153
_GSM7_PART_16BIT: Final = 152
_UCS2_SINGLE: Final = 70
_UCS2_PART_8BIT: Final = 67
_UCS2_PART_16BIT: Final = 66

# Extended grapheme clusters (UAX #29). Only used to split multipart UCS-2 messages, so short
# messages and every GSM-7 message never reach the regex engine.
_graphemes: Callable[[str], list[str]] = regex.compile(r"\X").findall


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent as GSM-7 (basic table + extension table)."""
    return _GSM_ALL.issuperset(text)


# Why hand-written: no maintained library counts and splits correctly. smpplib's splitter
# cuts escape pairs and surrogate pairs (and mis-maps some characters), sms-counter is wrong
# for emoji, python-messaging is GPL-2 and broken on Python 3, smsutil is unmaintained.
# So we build on the gsm0338 codec tables and regex's ``\X`` grapheme clusters.
def segment(text: str, *, concat_ref_16bit: bool = False) -> Segmentation:
    """Choose the encoding of ``text`` and split it into SMS segments.

    ``concat_ref_16bit`` selects the 16-bit concatenation reference (UDH IEI 0x08), which
    leaves one septet / one UTF-16 unit less per part than the 8-bit reference.
    """
    characters = len(text)
    if _GSM_BASIC.issuperset(text):
        # Hot path: no escapes, so one septet per character.
        if characters <= _GSM7_SINGLE:
            return Segmentation(Encoding.GSM7, (text,), characters, characters)
        cap = _GSM7_PART_16BIT if concat_ref_16bit else _GSM7_PART_8BIT
        parts = tuple(text[i : i + cap] for i in range(0, characters, cap))
        return Segmentation(Encoding.GSM7, parts, characters, characters)

    if _GSM_ALL.issuperset(text):
        units = characters + sum(map(text.count, _GSM_EXTENSION_CHARS))
        if units <= _GSM7_SINGLE:
            return Segmentation(Encoding.GSM7, (text,), units, characters)
        cap = _GSM7_PART_16BIT if concat_ref_16bit else _GSM7_PART_8BIT
        return Segmentation(Encoding.GSM7, _split_gsm7(text, cap), units, characters)

    # "surrogatepass": a lone surrogate (e.g. from a JSON "\ud800" escape) counts as one unit
    # instead of raising.
    units = len(text.encode("utf-16-le", "surrogatepass")) >> 1
    if units <= _UCS2_SINGLE:
        return Segmentation(Encoding.UCS2, (text,), units, characters)
    cap = _UCS2_PART_16BIT if concat_ref_16bit else _UCS2_PART_8BIT
    return Segmentation(Encoding.UCS2, _split_ucs2(text, cap), units, characters)


def _split_gsm7(text: str, cap: int) -> tuple[str, ...]:
    """Greedy split in septets; an escape pair (2 septets) never straddles two parts."""
    extension = _GSM_EXTENSION
    parts: list[str] = []
    start = used = 0
    for index, char in enumerate(text):
        cost = 2 if char in extension else 1
        if used + cost > cap:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return tuple(parts)


def _split_ucs2(text: str, cap: int) -> tuple[str, ...]:
    """Greedy split in UTF-16 units, keeping grapheme clusters and surrogate pairs whole."""
    parts: list[str] = []
    start = pos = used = 0
    for cluster in _graphemes(text):
        length = len(cluster)
        if length == 1:
            width = 2 if cluster > "\uffff" else 1
        else:
            width = len(cluster.encode("utf-16-le", "surrogatepass")) >> 1
        if width <= cap:
            if used + width > cap:
                parts.append(text[start:pos])
                start, used = pos, 0
            used += width
            pos += length
            continue
        # A cluster longer than a whole part (e.g. a letter with dozens of combining marks)
        # cannot be kept together: split it between code points, never inside a surrogate pair.
        for char in cluster:
            width = 2 if char > "\uffff" else 1
            if used + width > cap:
                parts.append(text[start:pos])
                start, used = pos, 0
            used += width
            pos += 1
    parts.append(text[start:])
    return tuple(parts)


# --- Smart encoding ------------------------------------------------------------------------

_SMART_REPLACEMENTS: Final[dict[str, str]] = {
    # curly / low-9 / reversed quotes
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    # en dash, em dash
    "\u2013": "-",
    "\u2014": "-",
    # horizontal ellipsis
    "\u2026": "...",
    # no-break space and the U+2000..U+200A spaces
    "\u00a0": " ",
    **{chr(code): " " for code in range(0x2000, 0x200B)},
    # full-width ASCII
    **{chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)},
    # zero-width space / non-joiner / joiner, byte order mark: removed
    **dict.fromkeys("\u200b\u200c\u200d\ufeff", ""),
}
_SMART_TABLE: Final[dict[int, str]] = str.maketrans(_SMART_REPLACEMENTS)


def smart_encode(text: str) -> tuple[str, dict[str, str]]:
    """Replace Unicode look-alikes by GSM characters when that makes the message GSM-7.

    Returns ``(new_text, {original_char: replacement})``. When the text is already GSM-7,
    or would still need UCS-2 after the replacements, it is returned unchanged with ``{}``.
    """
    if _GSM_ALL.issuperset(text):
        return text, {}
    replaced = text.translate(_SMART_TABLE)
    if not _GSM_ALL.issuperset(replaced):
        return text, {}
    return replaced, {
        char: _SMART_REPLACEMENTS[char]
        for char in dict.fromkeys(text)
        if char in _SMART_REPLACEMENTS
    }
