"""Tests for textbridge.kit.encoding: alphabet choice, segment counts and splitting."""

from itertools import pairwise

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec used as an independent oracle)
import pytest
import regex  # type: ignore[import-untyped,unused-ignore]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textbridge.kit import encoding
from textbridge.kit.encoding import Encoding, Segmentation, is_gsm7, segment, smart_encode

SINGLE = {Encoding.GSM7: 160, Encoding.UCS2: 70}
PART_8BIT = {Encoding.GSM7: 153, Encoding.UCS2: 67}
PART_16BIT = {Encoding.GSM7: 152, Encoding.UCS2: 66}

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👨‍👩‍👧‍👦, 11 units
FLAG_NL = "\U0001f1f3\U0001f1f1"  # 🇳🇱, 4 units
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"  # 👍🏽, 4 units
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"  # 🏳️‍🌈, 6 units


# --- independent oracles -------------------------------------------------------------------


def septets(text: str) -> int:
    """Septets as the gsm0338 codec encodes them (an escape pair is two bytes)."""
    return len(text.encode("gsm03.38"))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def cost(text: str, enc: Encoding) -> int:
    return septets(text) if enc is Encoding.GSM7 else utf16_units(text)


# --- exact examples --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "enc", "units", "segments"),
    [
        ("", Encoding.GSM7, 0, 1),
        ("hello", Encoding.GSM7, 5, 1),
        ("a" * 160, Encoding.GSM7, 160, 1),
        ("a" * 161, Encoding.GSM7, 161, 2),
        ("a" * 306, Encoding.GSM7, 306, 2),
        ("a" * 307, Encoding.GSM7, 307, 3),
        ("]" * 80, Encoding.GSM7, 160, 1),
        ("]" * 81, Encoding.GSM7, 162, 2),
        ("]" * 153, Encoding.GSM7, 306, 3),
        ("€", Encoding.GSM7, 2, 1),
        ("\f^{}\\[~]|€", Encoding.GSM7, 20, 1),
        ("é" * 160, Encoding.GSM7, 160, 1),  # é, è, ü, ß, Ç, Δ ... are in the basic table
        ("éèùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà£¥@$_", Encoding.GSM7, 42, 1),
        ("\r\n", Encoding.GSM7, 2, 1),
        ("á" * 70, Encoding.UCS2, 70, 1),
        ("á" * 71, Encoding.UCS2, 71, 2),
        ("\U0001f600" * 35, Encoding.UCS2, 70, 1),
        ("\U0001f600" * 36, Encoding.UCS2, 72, 2),
        ("\U0001f600" * 67, Encoding.UCS2, 134, 3),
        ("e\u0301", Encoding.UCS2, 2, 1),
        ("`", Encoding.UCS2, 1, 1),
        ("ç", Encoding.UCS2, 1, 1),
        ("ÀÈÌÒÙ", Encoding.UCS2, 5, 1),
        ("\u2019", Encoding.UCS2, 1, 1),
        ("\u201chi\u201d", Encoding.UCS2, 4, 1),
        ("\u2013\u2014", Encoding.UCS2, 2, 1),
        ("\u2026", Encoding.UCS2, 1, 1),
        ("\u2022", Encoding.UCS2, 1, 1),
        ("a\u00a0b", Encoding.UCS2, 3, 1),
        ("中文", Encoding.UCS2, 2, 1),
        ("\ud800", Encoding.UCS2, 1, 1),  # a lone surrogate (JSON "\ud800") does not raise
    ],
)
def test_examples(text: str, enc: Encoding, units: int, segments: int) -> None:
    result = segment(text)
    assert result.encoding is enc
    assert result.units == units
    assert result.segments == segments
    assert result.characters == len(text)
    assert "".join(result.parts) == text
    assert is_gsm7(text) == (enc is Encoding.GSM7)


def test_empty_text() -> None:
    assert segment("") == Segmentation(Encoding.GSM7, ("",), 0, 0)


def test_escape_pair_never_straddles() -> None:
    # 152 septets of "a", then "]" (2 septets) would need 154: it moves to the next part.
    result = segment("a" * 152 + "]" + "b" * 10)
    assert result.parts == ("a" * 152, "]" + "b" * 10)
    assert result.units == 164
    # 153 x "]": 76 pairs (152 septets) per part, so 76 + 76 + 1.
    assert [len(part) for part in segment("]" * 153).parts] == [76, 76, 1]


def test_crlf_is_two_septets() -> None:
    result = segment("a\r\nb")
    assert (result.encoding, result.units, result.characters) == (Encoding.GSM7, 4, 4)


def test_emoji_split_never_breaks_surrogate_pairs() -> None:
    result = segment("\U0001f600" * 36)
    assert result.parts == ("\U0001f600" * 33, "\U0001f600" * 3)
    result = segment("a" + "\U0001f600" * 35)  # 71 units; a code-unit split would cut an emoji
    assert result.parts == ("a" + "\U0001f600" * 33, "\U0001f600" * 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 60 + 11 = 71 units: the whole family moves to part 2 (a code point split would
        # leave "man ZWJ woman ZWJ" in part 1).
        ("a" * 60 + FAMILY, ("a" * 60, FAMILY)),
        # 64 + 4 + 3 = 71: a code point split would leave one regional indicator behind.
        ("a" * 64 + FLAG_NL + "bcd", ("a" * 64, FLAG_NL + "bcd")),
        ("a" * 64 + THUMBS_MEDIUM + "bcd", ("a" * 64, THUMBS_MEDIUM + "bcd")),
        ("a" * 62 + RAINBOW_FLAG + "bcd", ("a" * 62, RAINBOW_FLAG + "bcd")),
        # base + combining marks stay together: 66 + 2 + 3 = 71.
        ("á" * 66 + "e\u0301" + "xyz", ("á" * 66, "e\u0301xyz")),
    ],
)
def test_grapheme_cluster_moves_whole_to_next_part(text: str, expected: tuple[str, ...]) -> None:
    result = segment(text)
    assert result.encoding is Encoding.UCS2
    assert result.parts == expected


def test_oversized_grapheme_cluster_is_split_at_code_points() -> None:
    text = "a" + "\u0301" * 100  # one grapheme cluster of 101 units
    result = segment(text)
    assert result.encoding is Encoding.UCS2
    assert [len(part) for part in result.parts] == [67, 34]
    # with astral code points inside: never cut a surrogate pair
    text = "x" * 66 + "\u200d".join([FAMILY] * 8)  # one ZWJ chain: a 95-unit cluster
    result = segment(text)
    assert "".join(result.parts) == text
    for part in result.parts:
        assert utf16_units(part) <= 67  # utf-16 encode would fail on a split surrogate pair


@pytest.mark.parametrize(
    ("text", "lengths"),
    [
        ("a" * 161, [152, 9]),
        ("a" * 305, [152, 152, 1]),
        ("á" * 71, [66, 5]),
        ("a" + "\U0001f600" * 35, [33, 3]),  # 8-bit ref: [34, 2]
    ],
)
def test_16bit_concat_reference_capacities(text: str, lengths: list[int]) -> None:
    result = segment(text, concat_ref_16bit=True)
    assert [len(part) for part in result.parts] == lengths
    assert [len(part) for part in segment(text).parts] != lengths


def test_16bit_reference_does_not_change_single_capacity() -> None:
    assert segment("a" * 160, concat_ref_16bit=True).segments == 1
    assert segment("á" * 70, concat_ref_16bit=True).segments == 1


def test_text_is_not_normalised() -> None:
    decomposed = "Cafe\u0301"
    result = segment(decomposed)
    assert result.encoding is Encoding.UCS2
    assert result.parts == (decomposed,)
    assert segment("Café").encoding is Encoding.GSM7


def test_short_texts_do_not_touch_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(text: str) -> list[str]:
        raise AssertionError("regex used")

    monkeypatch.setattr(encoding, "_graphemes", boom)
    assert segment("hello").segments == 1
    assert segment("a" * 160).segments == 1
    assert segment("a" * 400).segments == 3  # GSM-7 never needs grapheme clusters
    assert segment("]" * 153).segments == 3
    assert segment("\U0001f600" * 35).segments == 1  # single UCS-2 message: nothing to split


def test_segmentation_is_frozen() -> None:
    result = segment("hi")
    with pytest.raises(AttributeError):
        result.units = 3  # type: ignore[misc]


def test_encoding_values() -> None:
    assert [str(enc) for enc in Encoding] == ["gsm7", "ucs2"]
    assert Encoding("ucs2") is Encoding.UCS2


# --- property tests ----------------------------------------------------------------------------

ASCII_GSM = st.sampled_from(
    [chr(c) for c in range(0x20, 0x7F) if chr(c) not in "`^{}\\[~]|"] + ["\n", "\r", "\r\n"]
)
GSM_EXTENSION = st.sampled_from(list("\f^{}\\[~]|€"))
GSM_BASIC_NON_ASCII = st.sampled_from(list("£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà"))
BMP_NON_GSM = st.one_of(
    st.sampled_from(list("`çáíóúÀÈÌÒÙ\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00a0\u2022中я")),
    st.characters(min_codepoint=0x100, max_codepoint=0xD7FF).filter(lambda c: not is_gsm7(c)),
)
EMOJI = st.sampled_from(
    [
        "\U0001f600",
        "\U0001f44d",
        THUMBS_MEDIUM,
        FAMILY,
        FLAG_NL,
        RAINBOW_FLAG,
        "\u2764\ufe0f",
        "1\ufe0f\u20e3",
        "\U0001f9d1\U0001f3fe\u200d\U0001f4bb",
    ]
)
COMBINING = st.one_of(
    st.sampled_from(["e\u0301", "\u0301", "a\u0308\u0323", "n\u0303", "\r\n"]),
    st.sampled_from(["e\u0301", "\u0301", "a\u0308\u0323", "n\u0303", "\r\n"]),
    st.integers(min_value=60, max_value=80).map(lambda n: "o" + "\u0301" * n),  # oversized
    # oversized and astral: one ZWJ chain of 20-30 emoji (59-89 UTF-16 units)
    st.integers(min_value=20, max_value=30).map(lambda n: "\u200d".join(["\U0001f600"] * n)),
)

GSM_PIECES = st.one_of(ASCII_GSM, ASCII_GSM, ASCII_GSM, GSM_EXTENSION, GSM_BASIC_NON_ASCII)
ANY_PIECES = st.one_of(ASCII_GSM, GSM_EXTENSION, GSM_BASIC_NON_ASCII, BMP_NON_GSM, EMOJI, COMBINING)


def _texts(pieces: st.SearchStrategy[str], max_pieces: int) -> st.SearchStrategy[str]:
    """Joined pieces; the length is drawn first so that long (multipart) texts are common."""
    return st.integers(min_value=0, max_value=max_pieces).flatmap(
        lambda n: st.lists(pieces, min_size=n, max_size=n).map("".join)
    )


def _padded(pieces: st.SearchStrategy[str], fillers: list[str]) -> st.SearchStrategy[str]:
    """A run of one character, then a few pieces: puts clusters and escapes near boundaries."""
    return st.builds(
        lambda filler, n, tail: filler * n + tail,
        st.sampled_from(fillers),
        st.integers(min_value=25, max_value=165),
        _texts(pieces, 12),
    )


gsm_texts = st.one_of(_texts(GSM_PIECES, 400), _padded(GSM_PIECES, ["a", "é", "]"]))
mixed_texts = st.one_of(_texts(ANY_PIECES, 160), _padded(ANY_PIECES, ["a", "á", "\U0001f600", "]"]))
texts = st.one_of(gsm_texts, mixed_texts)

PROPERTY_SETTINGS = settings(
    max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _cluster_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in regex.finditer(r"\X", text)]


def _boundaries(parts: tuple[str, ...]) -> list[int]:
    offsets, pos = [], 0
    for part in parts[:-1]:
        pos += len(part)
        offsets.append(pos)
    return offsets


@PROPERTY_SETTINGS
@given(text=texts, ref16=st.booleans())
def test_segmentation_properties(text: str, ref16: bool) -> None:
    result = segment(text, concat_ref_16bit=ref16)
    enc = result.encoding
    part_cap = (PART_16BIT if ref16 else PART_8BIT)[enc]

    # the parts are the text, unchanged
    assert "".join(result.parts) == text
    assert result.characters == len(text)
    assert result.segments == len(result.parts)
    assert all(result.parts) or text == ""

    # encoding choice and unit count
    assert is_gsm7(text) == (enc is Encoding.GSM7)
    assert result.units == cost(text, enc)

    # single part iff the whole text fits a single message
    assert (result.segments == 1) == (result.units <= SINGLE[enc])

    # every part within capacity (utf-16 encoding of each part also proves that no part
    # starts with a low surrogate or ends with a high one: strict encode would raise)
    if result.segments > 1:
        for part in result.parts:
            assert cost(part, enc) <= part_cap
            part.encode("utf-16-le")

    if enc is Encoding.GSM7:
        # minimal for the greedy rule: a non-last part could not take the next character
        for part, nxt in pairwise(result.parts):
            assert septets(part) + septets(nxt[0]) > part_cap
        return

    # UCS-2: no grapheme cluster spans two parts unless it alone exceeds a part
    spans = _cluster_spans(text)
    for boundary in _boundaries(result.parts):
        for start, end in spans:
            if start < boundary < end:
                assert utf16_units(text[start:end]) > part_cap

    # minimal for the greedy rule: a non-last part could not take the next atom (the next
    # cluster, or the next code point when inside / at the start of an oversized cluster)
    starts = {start: end for start, end in spans}
    for part, boundary in zip(result.parts[:-1], _boundaries(result.parts), strict=True):
        cluster_end = starts.get(boundary)
        if cluster_end is not None and utf16_units(text[boundary:cluster_end]) <= part_cap:
            nxt = text[boundary:cluster_end]
        else:
            nxt = text[boundary]
        assert utf16_units(part) + utf16_units(nxt) > part_cap


@PROPERTY_SETTINGS
@given(text=gsm_texts)
def test_gsm_text_is_gsm7_with_codec_septets(text: str) -> None:
    result = segment(text)
    assert result.encoding is Encoding.GSM7
    assert result.units == septets(text)


# --- smart encoding ---------------------------------------------------------------------------


def test_smart_encode_replaces_when_it_fits() -> None:
    text = "\u201cHi\u201d \u2013 it\u2019s\u2026\u00a0ok\u2009\uff01\u200b\ufeff"
    assert segment(text).encoding is Encoding.UCS2
    new, replaced = smart_encode(text)
    assert new == '"Hi" - it\'s... ok !'
    assert replaced == {
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2019": "'",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2009": " ",
        "\uff01": "!",
        "\u200b": "",
        "\ufeff": "",
    }
    assert segment(new).encoding is Encoding.GSM7


def test_smart_encode_full_width_and_dashes() -> None:
    assert smart_encode("\uff21\uff42\uff43\uff11\u2014x") == (
        "Abc1-x",
        {"\uff21": "A", "\uff42": "b", "\uff43": "c", "\uff11": "1", "\u2014": "-"},
    )


def test_smart_encode_leaves_text_alone_when_emoji_remains() -> None:
    text = "it\u2019s \U0001f600"
    assert smart_encode(text) == (text, {})


def test_smart_encode_leaves_text_alone_when_other_non_gsm_remains() -> None:
    text = "\u201cgar\u00e7on\u201d"  # ç has no GSM look-alike
    assert smart_encode(text) == (text, {})


def test_smart_encode_gsm_text_is_unchanged() -> None:
    assert smart_encode("plain [text] €5") == ("plain [text] €5", {})
    assert smart_encode("") == ("", {})


@PROPERTY_SETTINGS
@given(text=texts)
def test_smart_encode_properties(text: str) -> None:
    new, replaced = smart_encode(text)
    if replaced:
        assert is_gsm7(new)
        assert not is_gsm7(text)
        assert all(char in text for char in replaced)
        assert new == "".join(replaced.get(char, char) for char in text)
    else:
        assert new == text
