"""Tests for textbridge.kit.pdu: SMS-SUBMIT / SMS-DELIVER / SMS-STATUS-REPORT hex PDUs."""

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec used to build test PDUs)
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textbridge.kit.pdu import (
    Concat,
    Deliver,
    StatusReport,
    Submit,
    SubmitPdu,
    decode,
    encode_deliver,
    encode_status_report,
    encode_submit,
)


def tz(hours: int, minutes: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes))


def decode_deliver(pdu: str) -> Deliver:
    message = decode(pdu)
    assert isinstance(message, Deliver)
    return message


def decode_submit(pdu: str) -> Submit:
    message = decode(pdu)
    assert isinstance(message, Submit)
    return message


def decode_report(pdu: str) -> StatusReport:
    message = decode(pdu)
    assert isinstance(message, StatusReport)
    return message


def pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Independent septet packing (LSB first), to build PDUs the codec did not write."""
    value = 0
    for index, septet in enumerate(septets):
        value |= septet << (fill_bits + 7 * index)
    return value.to_bytes((fill_bits + 7 * len(septets) + 7) // 8, "little")


STAMP = "42102030405000"  # 2024-01-02 03:04:05 +00:00, swapped semi-octets


def deliver_pdu(dcs: int, udl: int, ud: bytes, *, udhi: bool = False) -> str:
    """SMS-DELIVER from 1234 (TOA 0x81) with the given coding and user data."""
    first = 0x44 if udhi else 0x04
    # SMSC 00 | first | OA 04 81 2143 | PID 00 | DCS | SCTS | UDL | UD
    return f"00{first:02X}0481214300{dcs:02X}{STAMP}{udl:02X}{ud.hex()}"


# --- known vectors -------------------------------------------------------------------------


def test_decode_classic_submit() -> None:
    # dreamfabric.com "SMS and the PDU format": to +46708251358, relative VP 0xAA.
    message = decode("0011000B916407281553F80000AA0AE8329BFD4697D9EC37")
    assert message == Submit(
        number="+46708251358", text="hellohello", concat=None, status_report=False
    )


def test_decode_classic_deliver() -> None:
    # Same source: SMSC +27381000015, sender TOA 0xC8 (not international).
    message = decode_deliver(
        "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
    )
    assert message.sender == "27838890001"
    assert message.text == "hellohello"
    assert message.concat is None
    assert message.timestamp == datetime(1999, 3, 29, 15, 16, 59, tzinfo=tz(2))
    assert message.timestamp.utcoffset() == timedelta(hours=2)


def test_encode_submit_classic() -> None:
    assert encode_submit("+46708251358", "hellohello", status_report=False) == [
        SubmitPdu(hex="0001000B916407281553F800000AE8329BFD4697D9EC37", tpdu_length=22)
    ]


# Captured on real networks (freesmartphone.org / Openmoko test data); our encoder writes
# the same TPDU, SMSC field aside.
CAPTURED_DELIVERS = [
    (
        "0791448720900253040C914497035290960000500151614414400DD4F29C9E769F41E17338ED06",
        "+447930250969",
        "Testing again",
        datetime(2005, 10, 15, 16, 44, 41, tzinfo=tz(1)),
    ),
    (
        "07914477790706520414D06176198F0EE361F2321900005001610013334014C324350B9287D12079180D92A3416134480E",
        "alexhax0red",
        "CITY rah rah rh ah r",
        datetime(2005, 10, 16, 0, 31, 33, tzinfo=tz(1)),
    ),
]


@pytest.mark.parametrize(("pdu", "sender", "text", "timestamp"), CAPTURED_DELIVERS)
def test_captured_delivers(pdu: str, sender: str, text: str, timestamp: datetime) -> None:
    assert decode(pdu) == Deliver(sender=sender, text=text, timestamp=timestamp, concat=None)
    smsc_octets = int(pdu[:2], 16)
    assert encode_deliver(sender, text, timestamp) == ["00" + pdu[2 + 2 * smsc_octets :]]


MULTIPART_1 = (
    "0791448720003023440C91449703529096000050015132532240A00500037A020190E9339A9D3EA3E920FA1B"
    "1466B341E472193E079DD3EE73D85DA7EB41E7B41C1407C1CBF43228CC26E3416137390F3AABCFEAB3FAAC3E"
    "ABCFEAB3FAAC3EABCFEAB3FAAC3EABCFEAB3FADC3EB7CFED73FBDC3EBF5D4416D9457411596457137D87B7E1"
    "6438194E86BBCF6D16D9055D429548A28BE822BA882E6370196C2A8950E291E822BA88"
)
MULTIPART_2 = (
    "0791448720003023440C91449703529096000050015132537240310500037A02025C4417D1D52422894EE5B1"
    "7824BA8EC423F1483C129BC725315464118FCDE011247C4A8B44"
)


def test_captured_multipart() -> None:
    first, second = decode_deliver(MULTIPART_1), decode_deliver(MULTIPART_2)
    assert first.concat == Concat(reference=122, total=2, sequence=1)
    assert second.concat == Concat(reference=122, total=2, sequence=2)
    assert len(first.text) == 153
    assert first.text.startswith("Highlight to all deeps ginganutz")
    assert second.text == ".D.D.MDHDNJGEGD.GDGDGDGDMGKD!E,DGMAG BORED"
    # The header and its fill bit come out exactly as the network wrote them.
    ours = encode_deliver(first.sender, first.text + second.text, first.timestamp, concat_ref=122)
    assert ours[0] == "00" + MULTIPART_1[16:]


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (  # UCS-2 (DCS 0x08), Taiwan, +08:00
            "0791889663000019040C918896631030990008809071619483234E60A86709672A63A54F8696FB003A"
            "000A00300039002F00310037002000300034003A003400330050004D4F8681EA00300039003800380035"
            "00360033003900390036002000280032901A0029000A",
            ("+886936010399", "您有未接來電:\n09/17 04:43PM來自0988563996 (2通)\n"),
        ),
        (  # alphanumeric sender of 10 septets (18 semi-octets)
            "07919471071600000412D0D4B03C6D6E25DDE63700008080221233758056B2970C040ABAE5757319947683"
            "C86539A858D5816438D0B8ECA683E0F237A89976D7E9651068F99ED3CB6EF67B5E0611CBF4709A9D769B"
            "DFA0BA9B5E96EB402B5A2E76BBC564B4598D367301",
            (
                "Tarif-Info",
                "2/2  Anrufe in der EU: 28 cent pro Minute  Kostenlose Detailinfo unter:"
                " +491771243543.",
            ),
        ),
        (  # 13 semi-octets hold 7 septets: the 3 leftover bits are padding, not an "@"
            "0791447758100650040DD0F334FC1CA6970100008080312170224008D4F29CDE0EA7D9",
            ("sipgate", "Testmail"),
        ),
        (  # a stray octet after the user data is ignored
            "07918896532430280406918816880000809042215024235FC3309B0D42BEDB6590380F22A7C3ECB4FB0C"
            "E2AD7C20DEF85D77D3E579D0F84D2E836839900FC403C1D16F7719E47E837CA01D681866B341ECF738CC"
            "06A9EB733A889C0EB341ECF738CC06C1D16F7719E47EBB00",
            (
                "+886188",
                "Call Home by dialing <+> <country code 49 > < phone no > ;"
                " Call local just dial local phone no.",
            ),
        ),
    ],
)
def test_captured_vectors(pdu: str, expected: tuple[str, str]) -> None:
    message = decode_deliver(pdu)
    assert (message.sender, message.text) == expected


def test_captured_submit_with_smsc_and_escape() -> None:
    # An SMSC address before the TPDU, TP-MR 0x31, and "[" as ESC + 0x3C.
    message = decode("079194710716000001310C919491103246570000061B1EBD3CA703")
    assert message == Submit(number="+491901236475", text="[test", concat=None, status_report=False)


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        # warthog618/sms: TP-PI 0x01 and a PID follow the status; both are ignored.
        ("000242049136195150713220052351408132200542AB0189", StatusReport(0x42, "+6391", 0xAB)),
        # fkgi/sms: recipient TOA 0x80, SCTS zone +09:00.
        ("00060004802143113022415204631130224152046300", StatusReport(0, "1234", 0)),
    ],
)
def test_status_report_vectors(pdu: str, expected: StatusReport) -> None:
    assert decode(pdu) == expected


def test_encode_status_report_layout() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz(-5))
    # first 06 | MR 07 | RA 0B 91 ... | SCTS with zone -20 quarters (0x0A) | DT the same | ST 00
    assert encode_status_report(7, "+15551234567", 0, at) == (
        "0006070B915155214365F7" + "4210203040500A" * 2 + "00"
    )


# --- encoding details ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "address"),
    [
        ("+15551234567", "0B915155214365F7"),
        ("0708251358", "0A817080523185"),
        ("1", "0181F1"),
        ("+" + "9" * 20, "1491" + "99" * 10),
    ],
)
def test_destination_address(number: str, address: str) -> None:
    (pdu,) = encode_submit(number, "x", status_report=False)
    assert pdu.hex.startswith("000100" + address + "0000")
    assert decode_submit(pdu.hex).number == number


@pytest.mark.parametrize(
    "number", ["", "+", "++1", "12a4", "+1 555", "1-555", "9" * 21, "+" + "9" * 21, "١٢٣", "123+"]
)
def test_bad_numbers(number: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        encode_submit(number, "hi")
    with pytest.raises(ValueError, match="recipient"):
        encode_status_report(1, number, 0, datetime(2024, 1, 1, tzinfo=UTC))


def test_status_report_request_bit() -> None:
    (with_report,) = encode_submit("123", "hi")
    (without,) = encode_submit("123", "hi", status_report=False)
    assert with_report.hex[2:4] == "21"
    assert without.hex[2:4] == "01"
    assert decode_submit(with_report.hex).status_report is True
    assert decode_submit(without.hex).status_report is False


def test_multipart_gsm7_layout() -> None:
    text = "a" * 200
    pdus = encode_submit("123", text, concat_ref=0x1234)
    assert len(pdus) == 2
    for sequence, pdu in enumerate(pdus, 1):
        # first 61 (UDHI + SRR + SUBMIT) | MR | DA 03 81 21F3 | PID | DCS 00 | UDL | UDH
        udl = 7 + (153 if sequence == 1 else 47)
        assert pdu.hex[:32] == f"006100038121F30000{udl:02X}0500033402{sequence:02X}"
        assert pdu.tpdu_length == len(bytes.fromhex(pdu.hex)) - 1
        # one fill bit, then "a" (0x61) shifted by it
        assert pdu.hex[32:34] == "C2"
    assert pdus[0].tpdu_length == 1 + 1 + 4 + 1 + 1 + 1 + 140


def test_multipart_ucs2_layout() -> None:
    text = "я" * 100
    pdus = encode_submit("+7123", text, status_report=False, concat_ref=5)
    assert len(pdus) == 2
    first = bytes.fromhex(pdus[0].hex)
    # SMSC | first 41 | MR | DA 04 91 1721 | PID | DCS 08 | UDL | UDH | text
    assert first[:12] == bytes.fromhex("004100049117320008") + bytes((6 + 134,)) + b"\x05\x00"
    assert first[12:16] == bytes((3, 5, 2, 1))
    assert first[16:] == ("я" * 67).encode("utf-16-be")
    assert [decode_submit(pdu.hex).text for pdu in pdus] == ["я" * 67, "я" * 33]


def test_too_many_parts() -> None:
    with pytest.raises(ValueError, match="255"):
        encode_submit("123", "a" * 153 * 256)


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        encode_submit("123", "hi \ud800")


# --- round trips ---------------------------------------------------------------------------

GSM_CHARS = sorted(
    ({bytes((code,)).decode("gsm03.38") for code in range(0x80)} - {""})  # 0x1B is ESC
    | {"€", "[", "]", "~", "{", "}", "\\", "^", "|", "\f"}
)


def assert_submit_round_trip(number: str, text: str, concat_ref: int = 0) -> list[Submit]:
    pdus = encode_submit(number, text, concat_ref=concat_ref)
    messages = [decode_submit(pdu.hex) for pdu in pdus]
    assert "".join(message.text for message in messages) == text
    for sequence, (pdu, message) in enumerate(zip(pdus, messages, strict=True), 1):
        assert pdu.hex == pdu.hex.upper()
        assert pdu.hex.startswith("00")
        assert pdu.tpdu_length == len(bytes.fromhex(pdu.hex)) - 1
        assert message.number == number
        assert message.status_report is True
        if len(pdus) == 1:
            assert message.concat is None
        else:
            assert message.concat == Concat(concat_ref & 0xFF, len(pdus), sequence)
    return messages


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "@" * 7,  # ends with seven zero bits of padding after "@" (septet 0x00)
        "a" * 160,
        "€ [ ] ~ { } \\ ^ | \f",
        "]" * 80,
        "ΔΦΓΛΩΠΨΣΘΞ ÆæßÉ ¤¡ÄÖÑÜ§¿äöñüà£¥ é",
        "hi \U0001f600 \U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001f600" * 35,
        "中文 العربية עברית",
        "\x00\x7f\u0080\uffff",
    ],
)
def test_single_part_round_trip(text: str) -> None:
    assert len(assert_submit_round_trip("+4412345", text)) == 1
    (pdu,) = encode_deliver("+4412345", text, datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC))
    assert decode_deliver(pdu).text == text


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 81, 2),  # 162 septets: 76 pairs, then 5; a pair never straddles parts
        ("a" * 152 + "]" + "b" * 10, 2),
        ("á" * 71, 2),
        ("\U0001f600" * 36, 2),
        ("x" + "\U0001f600" * 100, 4),
    ],
)
def test_multipart_round_trip(text: str, parts: int) -> None:
    assert len(assert_submit_round_trip("15551234567", text, concat_ref=300)) == parts
    pdus = encode_deliver("Textbridge", text, datetime(2024, 1, 1, tzinfo=UTC), concat_ref=7)
    messages = [decode_deliver(pdu) for pdu in pdus]
    assert "".join(message.text for message in messages) == text
    assert [message.concat for message in messages] == [
        Concat(7, parts, sequence) for sequence in range(1, parts + 1)
    ]


@pytest.mark.parametrize(
    ("sender", "semi_octets"),
    [("A", 2), ("Textbridge", 18), ("ABCDEFGHIJK", 20), ("€uro", 9), ("Ωmega-ß_Å", 16)],
)
def test_alphanumeric_sender(sender: str, semi_octets: int) -> None:
    (pdu,) = encode_deliver(sender, "hi", datetime(2024, 1, 1, tzinfo=UTC))
    assert pdu[2:8] == f"04{semi_octets:02X}D0"
    assert decode_deliver(pdu).sender == sender


@pytest.mark.parametrize("sender", ["ABCDEFGHIJKL", "€€€€€€", "Łódź", "Zoë", ""])
def test_bad_alphanumeric_sender(sender: str) -> None:
    with pytest.raises(ValueError, match="sender"):
        encode_deliver(sender, "hi", datetime(2024, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "zone",
    [tz(0), tz(-3, -30), tz(-9, -45), tz(-12), tz(5, 45), tz(14), tz(19, 45), tz(-19, -45)],
)
def test_time_zones(zone: timezone) -> None:
    moment = datetime(2031, 12, 31, 23, 59, 58, tzinfo=zone)
    (pdu,) = encode_deliver("123", "hi", moment)
    timestamp = decode_deliver(pdu).timestamp
    assert timestamp == moment
    assert timestamp.utcoffset() == moment.utcoffset()
    assert (timestamp.year, timestamp.hour) == (2031, 23)


def test_negative_zone_octet() -> None:
    # -03:30 is 14 quarter hours: swapped BCD "41" with the sign bit (0x08) on the tens digit.
    (pdu,) = encode_deliver("123", "", datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz(-3, -30)))
    assert pdu.endswith("421020304050" + "49" + "00")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 1, 1),  # naive
        datetime(2024, 1, 1, tzinfo=tz(5, 20)),  # not whole quarter hours
        datetime(2024, 1, 1, tzinfo=tz(20)),  # beyond what the zone octet holds
        datetime(1968, 12, 31, tzinfo=UTC),
        datetime(2069, 1, 1, tzinfo=UTC),
    ],
)
def test_bad_timestamps(moment: datetime) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        encode_deliver("123", "hi", moment)
    with pytest.raises(ValueError, match=r"^at "):
        encode_status_report(1, "123", 0, moment)


def test_years_around_the_pivot() -> None:
    for year in (1969, 1999, 2000, 2068):
        moment = datetime(year, 6, 1, tzinfo=UTC)
        assert decode_deliver(encode_deliver("1", "x", moment)[0]).timestamp == moment


@pytest.mark.parametrize(
    ("status", "delivered", "final"),
    [
        (0x00, True, True),
        (0x1F, True, True),
        (0x20, False, False),
        (0x3F, False, False),
        (0x41, False, True),
        (0x65, False, True),
    ],
)
def test_status_report_round_trip(status: int, delivered: bool, final: bool) -> None:
    at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=tz(-4))
    report = decode_report(encode_status_report(0xFE, "+15551234567", status, at))
    assert report == StatusReport(reference=0xFE, recipient="+15551234567", status=status)
    assert (report.delivered, report.final) == (delivered, final)


@pytest.mark.parametrize(("reference", "status"), [(-1, 0), (256, 0), (0, -1), (0, 256)])
def test_status_report_octets(reference: int, status: int) -> None:
    with pytest.raises(ValueError, match="octet"):
        encode_status_report(reference, "123", status, datetime(2024, 1, 1, tzinfo=UTC))


# --- decoding details ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dcs", "alphabet"),
    [
        (0x00, "gsm7"),
        (0x10, "gsm7"),  # class 0
        (0x11, "gsm7"),
        (0x0C, "gsm7"),  # reserved alphabet: read as the default alphabet
        (0x40, "gsm7"),  # automatic deletion group
        (0xC0, "gsm7"),  # message waiting, discard
        (0xD8, "gsm7"),  # message waiting, store
        (0x80, "gsm7"),  # reserved coding group
        (0xF0, "gsm7"),
        (0xF3, "gsm7"),
        (0x04, "8bit"),
        (0x15, "8bit"),
        (0xF4, "8bit"),
        (0xF6, "8bit"),
        (0x08, "ucs2"),
        (0x18, "ucs2"),
        (0x48, "ucs2"),
        (0xE0, "ucs2"),
    ],
)
def test_data_coding_schemes(dcs: int, alphabet: str) -> None:
    if alphabet == "gsm7":
        septets = "Ünicode?".encode("gsm03.38")
        pdu = deliver_pdu(dcs, len(septets), pack(septets))
        expected = "Ünicode?"
    elif alphabet == "8bit":
        pdu = deliver_pdu(dcs, 4, b"\x00\xe9\xff\x41")
        expected = "\x00éÿA"
    else:
        data = "hé \U0001f600".encode("utf-16-be")
        pdu = deliver_pdu(dcs, len(data), data)
        expected = "hé \U0001f600"
    assert decode_deliver(pdu).text == expected


def test_compressed_is_rejected() -> None:
    with pytest.raises(ValueError, match="compressed"):
        decode(deliver_pdu(0x24, 1, b"\x00"))


@pytest.mark.parametrize(
    ("first", "vp"),
    [(0x01, ""), (0x11, "AA"), (0x09, "01" + "00" * 6), (0x19, "42102030405000")],
)
def test_validity_period_formats(first: int, vp: str) -> None:
    # SMSC 00 | first | MR 00 | DA 04 81 2143 | PID 00 | DCS 00 | VP | UDL 05 | "hello"
    pdu = f"00{first:02X}00048121430000{vp}05E8329BFD06"
    assert decode(pdu) == Submit(number="1234", text="hello", concat=None, status_report=False)


def test_concat_16bit_reference() -> None:
    # UDHL 06 | IEI 08 len 04 ref 0x0102 total 3 seq 2: 7 octets = 8 septets, no fill bits.
    header = bytes.fromhex("06080401020302")
    septets = "hi".encode("gsm03.38")
    pdu = deliver_pdu(0x00, 8 + 2, header + pack(septets), udhi=True)
    assert decode_deliver(pdu) == Deliver(
        sender="1234",
        text="hi",
        timestamp=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        concat=Concat(reference=0x0102, total=3, sequence=2),
    )
    ucs2 = header + "hi".encode("utf-16-be")
    assert decode_deliver(deliver_pdu(0x08, len(ucs2), ucs2, udhi=True)).concat == Concat(
        0x0102, 3, 2
    )


def test_header_with_other_elements_and_fill_bits() -> None:
    # Port addressing (IEI 05) before the concat element: UDHL 11, 12 header octets = 96
    # bits, so the text starts after 14 septets and 2 fill bits.
    header = bytes.fromhex("0B05040B8423F000030A0201")
    septets = "{ok}".encode("gsm03.38")
    pdu = deliver_pdu(0x00, 14 + len(septets), header + pack(septets, 2), udhi=True)
    message = decode_deliver(pdu)
    assert (message.text, message.concat) == ("{ok}", Concat(10, 2, 1))


@pytest.mark.parametrize("concat", ["00030A0000", "00030A0203", "00030A0300"])
def test_invalid_concat_element_is_ignored(concat: str) -> None:
    header = bytes.fromhex("05" + concat)
    data = header + "x".encode("utf-16-be")
    assert decode_deliver(deliver_pdu(0x08, len(data), data, udhi=True)).concat is None


def test_unassigned_escape_shows_the_basic_character() -> None:
    septets = bytes((0x1B, 0x41, 0x62))  # ESC "A" is unassigned in the extension table
    assert decode_deliver(deliver_pdu(0x00, 3, pack(septets))).text == "Ab"


def test_ucs2_broken_surrogate_is_replaced() -> None:
    data = "a\U0001f600".encode("utf-16-be")[:4]  # a high surrogate alone at the end
    assert decode_deliver(deliver_pdu(0x08, 4, data)).text == "a\ufffd"


def test_surrounding_whitespace_and_lower_case() -> None:
    pdu = " 0011000b916407281553f80000aa0ae8329bfd4697d9ec37\r\n"
    assert decode_submit(pdu).text == "hellohello"


# --- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pdu", "message"),
    [
        ("", "hex"),
        ("   ", "hex"),
        ("0", "hex"),
        ("001", "hex"),
        ("0G", "hex"),
        ("hello", "hex"),
        ("00 11", "hex"),
        ("00", "first octet"),
        ("0F00", "SMSC"),
        ("0003", "message type"),
        ("0004", "originating address"),
        ("000414D0", "originating address"),
        ("000404812143000042122030405000" + "00", "valid date"),  # month 21
        ("00040481214300004210203040B000" + "00", "BCD"),  # a nibble above 9
        ("000404812143000042102030405000", "TP-UDL"),
        ("00040481214300004210203040500005E8329B", "user data"),
        ("00440481214300004210203040500000", "empty"),
        ("00440481214300084210203040500002" + "0500", "overruns"),
        ("004404812143000042102030405000" + "01" + "00", "TP-UDL"),
        ("00440481214300084210203040500004" + "03000300", "overruns the header"),
        ("00440481214300084210203040500003" + "020003", "overruns the header"),
        ("00440481214300084210203040500002" + "0100", "inside an information element"),
        ("0001000481214300", "TP-DCS"),
        ("001900048121430000421020", "TP-VP"),
        ("0002000481214342102030405000", "TP-DT"),
        ("000200048121434210203040500042102030405000", "TP-ST"),
    ],
)
def test_malformed(pdu: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(pdu)


VALID_PDUS = [
    "0011000B916407281553F80000AA0AE8329BFD4697D9EC37",
    "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37",
    MULTIPART_2,
    CAPTURED_DELIVERS[1][0],
    "000242049136195150713220052351408132200542AB",
]


@pytest.mark.parametrize("pdu", VALID_PDUS)
def test_every_truncation_raises(pdu: str) -> None:
    for end in range(0, len(pdu), 2):
        with pytest.raises(ValueError, match=r"truncated|hex"):
            decode(pdu[:end])


PROPERTY_SETTINGS = settings(
    max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=180))
def test_junk_raises_only_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode(data.hex())


@PROPERTY_SETTINGS
@given(pdu=st.sampled_from(VALID_PDUS), position=st.integers(0, 200), octet=st.integers(0, 255))
def test_corrupted_octet_raises_only_value_error(pdu: str, position: int, octet: int) -> None:
    data = bytearray.fromhex(pdu)
    data[position % len(data)] = octet
    with contextlib.suppress(ValueError):
        decode(data.hex())


# --- properties ----------------------------------------------------------------------------

# Any text without lone surrogates (a UTF-16 encoder cannot carry those), drawn both from all
# of Unicode and from the GSM alphabet so that long GSM-7 multipart texts come up too.
unicode_texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=400)
gsm_texts = st.text(st.sampled_from(GSM_CHARS), max_size=500)
texts = st.one_of(unicode_texts, gsm_texts)
numbers = st.from_regex(r"\+?[0-9]{1,20}", fullmatch=True)
alphanumeric = st.text(st.sampled_from(GSM_CHARS), min_size=1, max_size=5).filter(
    lambda s: not s.removeprefix("+").isdecimal()
)
zones = st.integers(min_value=-79, max_value=79).map(lambda q: timezone(timedelta(minutes=15 * q)))
moments = st.builds(
    lambda moment, zone: moment.replace(microsecond=0, tzinfo=zone),
    st.datetimes(min_value=datetime(1969, 1, 1), max_value=datetime(2068, 12, 31, 23, 59, 59)),
    zones,
)


@PROPERTY_SETTINGS
@given(number=numbers, text=texts, concat_ref=st.integers(min_value=0, max_value=0xFFFF))
def test_submit_round_trip_property(number: str, text: str, concat_ref: int) -> None:
    assert_submit_round_trip(number, text, concat_ref)


@PROPERTY_SETTINGS
@given(
    sender=st.one_of(numbers, alphanumeric),
    text=texts,
    moment=moments,
    concat_ref=st.integers(min_value=0, max_value=0xFF),
)
def test_deliver_round_trip_property(
    sender: str, text: str, moment: datetime, concat_ref: int
) -> None:
    pdus = encode_deliver(sender, text, moment, concat_ref=concat_ref)
    messages = [decode_deliver(pdu) for pdu in pdus]
    assert "".join(message.text for message in messages) == text
    for sequence, message in enumerate(messages, 1):
        assert message.sender == sender
        assert message.timestamp == moment
        assert message.timestamp.utcoffset() == moment.utcoffset()
        expected = None if len(messages) == 1 else Concat(concat_ref, len(messages), sequence)
        assert message.concat == expected


@PROPERTY_SETTINGS
@given(
    reference=st.integers(min_value=0, max_value=0xFF),
    recipient=numbers,
    status=st.integers(min_value=0, max_value=0xFF),
    moment=moments,
)
def test_status_report_round_trip_property(
    reference: int, recipient: str, status: int, moment: datetime
) -> None:
    report = decode_report(encode_status_report(reference, recipient, status, moment))
    assert report == StatusReport(reference, recipient, status)
