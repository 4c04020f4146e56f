"""SMS PDU codec: SMS-SUBMIT, SMS-DELIVER and SMS-STATUS-REPORT (3GPP TS 23.040 / 23.038).

Hand-written because the PyPI options do not fit: python-gsmmodem-new is an unmaintained
beta (SyntaxWarnings on current Python) and smspdudecoder only decodes, without status
reports. The alphabet and the splitting come from :mod:`textbridge.kit.encoding` and the
``gsm0338`` codec, never from a table of our own.

A PDU as a modem shows it (AT+CMGS in PDU mode, +CMT, +CMGR, +CDS) is hex text: an SMSC
address (its length octet first; ``00`` means the modem's default SMSC), then the TPDU::

    SMS-SUBMIT         first | MR | DA | PID | DCS | VP (0, 1 or 7) | UDL | UD
    SMS-DELIVER        first | OA | PID | DCS | SCTS (7) | UDL | UD
    SMS-STATUS-REPORT  first | MR | RA | SCTS (7) | DT (7) | ST | optional fields

An address is a length (digits, or semi-octets used when alphanumeric), a type-of-address
octet and the digits as swapped semi-octets padded with F (or packed septets). UDL counts
septets for GSM-7 and octets otherwise; after a user-data header (TP-UDHI) GSM-7 text
resumes on the next septet boundary. Two-digit years are 1969-2068, as in POSIX ``%y``.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Final

import gsm0338  # noqa: F401  (importing it registers the "gsm03.38" codec)

from textbridge.kit.encoding import Encoding, is_gsm7, segment

__all__ = [
    "Concat",
    "Deliver",
    "StatusReport",
    "Submit",
    "SubmitPdu",
    "decode",
    "encode_deliver",
    "encode_status_report",
    "encode_submit",
]


@dataclass(frozen=True, slots=True)
class SubmitPdu:
    """One SMS-SUBMIT, ready for ``AT+CMGS=<tpdu_length>`` followed by ``hex``."""

    #: Upper-case hex, starting with the SMSC field ``00`` (the modem's default SMSC).
    hex: str
    #: Octets after the SMSC field: the number AT+CMGS takes.
    tpdu_length: int


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation information of one part of a multipart message."""

    reference: int
    total: int
    #: 1-based.
    sequence: int


@dataclass(frozen=True, slots=True)
class Deliver:
    """An incoming SMS (SMS-DELIVER)."""

    #: ``+`` and digits when international, the digits otherwise, the text when alphanumeric.
    sender: str
    text: str
    #: Service-centre time stamp, in the zone the SC stated.
    timestamp: datetime
    concat: Concat | None


@dataclass(frozen=True, slots=True)
class Submit:
    """An outgoing SMS (SMS-SUBMIT), as a simulated modem receives it."""

    number: str
    text: str
    concat: Concat | None
    status_report: bool


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The delivery outcome of one submitted part (SMS-STATUS-REPORT)."""

    #: TP-MR of the submitted part: what +CMGS answered.
    reference: int
    recipient: str
    #: TP-ST.
    status: int

    @property
    def delivered(self) -> bool:
        """Whether the message reached the recipient (transaction completed)."""
        return self.status <= 0x1F

    @property
    def final(self) -> bool:
        """Whether no other report will follow (0x20-0x3F: the SC is still trying)."""
        return not 0x20 <= self.status <= 0x3F


# --- Constants -----------------------------------------------------------------------------

_CODEC: Final = "gsm03.38"

_MTI_DELIVER: Final = 0b00
_MTI_SUBMIT: Final = 0b01
_MTI_STATUS_REPORT: Final = 0b10
_MMS_NO_MORE: Final = 0x04  # DELIVER / STATUS-REPORT: no more messages waiting in the SC
_SRR: Final = 0x20  # SUBMIT: status report requested
_UDHI: Final = 0x40

_TOA_INTERNATIONAL: Final = 0x91
_TOA_UNKNOWN: Final = 0x81
_TOA_ALPHANUMERIC: Final = 0xD0
_TON_MASK: Final = 0x70
_TON_INTERNATIONAL: Final = 0x10
_TON_ALPHANUMERIC: Final = 0x50

_DCS_GSM7: Final = 0x00
_DCS_UCS2: Final = 0x08

_IEI_CONCAT_8BIT: Final = 0x00
_IEI_CONCAT_16BIT: Final = 0x08

_MAX_DIGITS: Final = 20
_MAX_ALPHANUMERIC: Final = 11
_MAX_PARTS: Final = 255
_MAX_QUARTERS: Final = 79  # the zone's tens digit has only 3 bits
_YEAR_PIVOT: Final = 69

_VP_LENGTH: Final[dict[int, int]] = {0b00: 0, 0b10: 1, 0b01: 7, 0b11: 7}
_SEMI_OCTETS: Final = "0123456789*#abc"  # 0xF is the filler

_DIGITS: Final = re.compile(r"[0-9]+")
_HEX: Final = re.compile(r"(?:[0-9A-Fa-f]{2})+")


class _Alphabet(Enum):
    GSM7 = "gsm7"
    EIGHT_BIT = "8bit"
    UCS2 = "ucs2"


# --- Encoding ------------------------------------------------------------------------------


def encode_submit(
    number: str, text: str, *, concat_ref: int = 0, status_report: bool = True
) -> list[SubmitPdu]:
    """SMS-SUBMIT PDUs for ``text`` to ``number``, one per segment.

    ``number`` is digits with an optional leading ``+`` (international). Several parts carry
    an 8-bit concatenation header with ``concat_ref & 0xFF``. TP-MR is 00: the modem assigns
    the reference and answers it in +CMGS.
    """
    address = _number_address(number, what="number")
    first_octet = _MTI_SUBMIT | (_SRR if status_report else 0)
    pdus: list[SubmitPdu] = []
    for body in _bodies(text, concat_ref):
        tpdu = (
            bytes((first_octet | body.udhi, 0x00))
            + address
            + bytes((0x00, body.dcs, body.udl))
            + body.ud
        )
        pdus.append(SubmitPdu(hex=_to_hex(tpdu), tpdu_length=len(tpdu)))
    return pdus


def encode_deliver(
    sender: str, text: str, timestamp: datetime, *, concat_ref: int = 0
) -> list[str]:
    """SMS-DELIVER PDUs (hex, SMSC field ``00``) for ``text`` from ``sender``.

    ``sender`` is a number as for :func:`encode_submit`, or else an alphanumeric sender of
    at most 11 GSM-7 septets. ``timestamp`` must be timezone-aware, in whole quarter hours.
    """
    origin = _sender_address(sender)
    stamp = _encode_timestamp(timestamp, what="timestamp")
    return [
        _to_hex(
            bytes((_MTI_DELIVER | _MMS_NO_MORE | body.udhi,))
            + origin
            + bytes((0x00, body.dcs))
            + stamp
            + bytes((body.udl,))
            + body.ud
        )
        for body in _bodies(text, concat_ref)
    ]


def encode_status_report(reference: int, recipient: str, status: int, at: datetime) -> str:
    """An SMS-STATUS-REPORT (hex, SMSC field ``00``); SCTS and discharge time are both ``at``."""
    if not 0 <= reference <= 0xFF:
        raise ValueError(f"reference {reference} is not an octet (0-255)")
    if not 0 <= status <= 0xFF:
        raise ValueError(f"status {status} is not an octet (0-255)")
    stamp = _encode_timestamp(at, what="at")
    return _to_hex(
        bytes((_MTI_STATUS_REPORT | _MMS_NO_MORE, reference))
        + _number_address(recipient, what="recipient")
        + stamp
        + stamp
        + bytes((status,))
    )


@dataclass(frozen=True, slots=True)
class _Body:
    udhi: int  # the TP-UDHI bit of the first octet, or 0
    dcs: int
    udl: int
    ud: bytes


def _bodies(text: str, concat_ref: int) -> list[_Body]:
    split = segment(text)
    total = len(split.parts)
    if total == 1:
        return [_body(split.parts[0], split.encoding, b"")]
    if total > _MAX_PARTS:
        raise ValueError(f"text needs {total} parts; a concatenated SMS has at most 255")
    reference = concat_ref & 0xFF
    return [
        _body(part, split.encoding, bytes((5, _IEI_CONCAT_8BIT, 3, reference, total, sequence)))
        for sequence, part in enumerate(split.parts, 1)
    ]


def _body(part: str, encoding: Encoding, header: bytes) -> _Body:
    udhi = _UDHI if header else 0
    if encoding is Encoding.GSM7:
        septets = part.encode(_CODEC)
        # The header occupies whole septets; fill bits pad it up to the next boundary.
        header_septets = (len(header) * 8 + 6) // 7
        fill_bits = header_septets * 7 - len(header) * 8
        ud = header + _pack_septets(septets, fill_bits)
        return _Body(udhi, _DCS_GSM7, header_septets + len(septets), ud)
    try:
        data = part.encode("utf-16-be")
    except UnicodeEncodeError:
        raise ValueError("text has a lone UTF-16 surrogate, which UCS-2 cannot carry") from None
    return _Body(udhi, _DCS_UCS2, len(header) + len(data), header + data)


def _number_address(number: str, *, what: str) -> bytes:
    international = number.startswith("+")
    digits = number[1:] if international else number
    if not _DIGITS.fullmatch(digits) or len(digits) > _MAX_DIGITS:
        raise ValueError(
            f"{what} {number!r} must be 1 to {_MAX_DIGITS} digits with an optional leading +"
        )
    toa = _TOA_INTERNATIONAL if international else _TOA_UNKNOWN
    return bytes((len(digits), toa)) + _swap_semi_octets(digits)


def _sender_address(sender: str) -> bytes:
    if _DIGITS.fullmatch(sender.removeprefix("+")):
        return _number_address(sender, what="sender")
    septets = sender.encode(_CODEC) if sender and is_gsm7(sender) else b""
    if not septets or len(septets) > _MAX_ALPHANUMERIC:
        raise ValueError(
            f"sender {sender!r} is neither a number nor 1 to {_MAX_ALPHANUMERIC} GSM-7 septets"
        )
    # The length field counts the semi-octets actually used by the packed septets.
    return bytes(((len(septets) * 7 + 3) // 4, _TOA_ALPHANUMERIC)) + _pack_septets(septets)


def _swap_semi_octets(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2)))


def _encode_timestamp(moment: datetime, *, what: str) -> bytes:
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"{what} must be timezone-aware")
    quarters, rest = divmod(offset, timedelta(minutes=15))
    if rest or abs(quarters) > _MAX_QUARTERS:
        raise ValueError(f"{what} has UTC offset {offset}, not whole quarter hours within ±19:45")
    if not 1900 + _YEAR_PIVOT <= moment.year < 2000 + _YEAR_PIVOT:
        raise ValueError(f"{what} year {moment.year} is outside 1969-2068 (two-digit years)")
    digits = (
        f"{moment.year % 100:02}{moment.month:02}{moment.day:02}"
        f"{moment.hour:02}{moment.minute:02}{moment.second:02}"
    )
    zone = abs(quarters)
    zone_octet = (zone % 10) << 4 | zone // 10 | (0x08 if quarters < 0 else 0)
    return _swap_semi_octets(digits) + bytes((zone_octet,))


def _pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    value = 0
    for index, septet in enumerate(septets):
        value |= septet << (fill_bits + 7 * index)
    return value.to_bytes((fill_bits + 7 * len(septets) + 7) // 8, "little")


def _to_hex(tpdu: bytes) -> str:
    return "00" + tpdu.hex().upper()


# --- Decoding ------------------------------------------------------------------------------


def decode(pdu: str) -> Deliver | Submit | StatusReport:
    """Decode a hex PDU that starts with its SMSC field (``00`` or an address).

    The message type is read as a modem receives it (DELIVER, STATUS-REPORT) or as a
    modem is given it (SUBMIT). Octets after the user data or the status are ignored.
    Raises :class:`ValueError` when the PDU is not hex, is truncated or is malformed.
    """
    reader = _Reader(_from_hex(pdu))
    reader.take(reader.octet("SMSC length"), "SMSC address")
    first_octet = reader.octet("first octet")
    udhi = bool(first_octet & _UDHI)
    match first_octet & 0x03:
        case 0b00:
            sender = _read_address(reader, "originating address")
            reader.octet("TP-PID")
            dcs = reader.octet("TP-DCS")
            timestamp = _read_timestamp(reader, "TP-SCTS")
            concat, text = _read_user_data(reader, dcs, udhi=udhi)
            return Deliver(sender=sender, text=text, timestamp=timestamp, concat=concat)
        case 0b01:
            reader.octet("TP-MR")
            number = _read_address(reader, "destination address")
            reader.octet("TP-PID")
            dcs = reader.octet("TP-DCS")
            reader.take(_VP_LENGTH[(first_octet >> 3) & 0x03], "TP-VP")
            concat, text = _read_user_data(reader, dcs, udhi=udhi)
            return Submit(
                number=number,
                text=text,
                concat=concat,
                status_report=bool(first_octet & _SRR),
            )
        case 0b10:
            reference = reader.octet("TP-MR")
            recipient = _read_address(reader, "recipient address")
            # Neither time is exposed, so a bogus clock in the SC cannot lose a report.
            reader.take(7, "TP-SCTS")
            reader.take(7, "TP-DT")
            status = reader.octet("TP-ST")
            return StatusReport(reference=reference, recipient=recipient, status=status)
        case _:
            raise ValueError(f"first octet {first_octet:#04x} has the reserved message type 3")


class _Reader:
    """Consumes a PDU front to back; running short is a ValueError naming the field."""

    __slots__ = ("_data", "_position")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def take(self, count: int, field: str) -> bytes:
        start = self._position
        end = start + count
        if end > len(self._data):
            raise ValueError(
                f"PDU truncated in {field}: needs {count} octets at offset {start},"
                f" {len(self._data) - start} left"
            )
        self._position = end
        return self._data[start:end]

    def octet(self, field: str) -> int:
        return self.take(1, field)[0]


def _from_hex(pdu: str) -> bytes:
    text = pdu.strip()
    if not _HEX.fullmatch(text):
        raise ValueError(f"PDU is not a non-empty, even-length hex string: {pdu[:40]!r}")
    return bytes.fromhex(text)


def _read_address(reader: _Reader, field: str) -> str:
    length = reader.octet(field)
    toa = reader.octet(field)
    raw = reader.take((length + 1) // 2, field)
    if toa & _TON_MASK == _TON_ALPHANUMERIC:
        return _gsm_decode(_unpack_septets(raw, length * 4 // 7))
    nibbles = [n for octet in raw for n in (octet & 0x0F, octet >> 4)][:length]
    digits = "".join(_SEMI_OCTETS[n] for n in nibbles if n < len(_SEMI_OCTETS))
    return "+" + digits if toa & _TON_MASK == _TON_INTERNATIONAL else digits


def _read_timestamp(reader: _Reader, field: str) -> datetime:
    raw = reader.take(7, field)
    if any(octet & 0x0F > 9 or octet >> 4 > 9 for octet in raw[:6]) or raw[6] >> 4 > 9:
        raise ValueError(f"{field} {raw.hex().upper()} is not swapped BCD")
    year, month, day, hour, minute, second = (
        (octet & 0x0F) * 10 + (octet >> 4) for octet in raw[:6]
    )
    # Zone in quarter hours, tens digit in the low nibble, whose bit 3 is the sign.
    quarters = (raw[6] & 0x07) * 10 + (raw[6] >> 4)
    if raw[6] & 0x08:
        quarters = -quarters
    year += 1900 if year >= _YEAR_PIVOT else 2000
    zone = timezone(timedelta(minutes=15 * quarters))
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        raise ValueError(f"{field} {raw.hex().upper()} is not a valid date and time") from None


def _alphabet(dcs: int) -> _Alphabet:
    group = dcs >> 4
    if group <= 0x7:  # general data coding, with or without automatic deletion
        if dcs & 0x20:
            raise ValueError(f"TP-DCS {dcs:#04x}: compressed user data is not supported")
        return (_Alphabet.GSM7, _Alphabet.EIGHT_BIT, _Alphabet.UCS2, _Alphabet.GSM7)[
            (dcs >> 2) & 0x03
        ]
    if group == 0xF:  # data coding / message class
        return _Alphabet.EIGHT_BIT if dcs & 0x04 else _Alphabet.GSM7
    if group == 0xE:  # message waiting indication, UCS-2
        return _Alphabet.UCS2
    # 0xC/0xD are message waiting with GSM-7; 23.038 §4 says reserved codings (including
    # the reserved alphabet 0b11 above) are read as the GSM-7 default alphabet.
    return _Alphabet.GSM7


def _read_user_data(reader: _Reader, dcs: int, *, udhi: bool) -> tuple[Concat | None, str]:
    alphabet = _alphabet(dcs)
    udl = reader.octet("TP-UDL")
    ud = reader.take((udl * 7 + 7) // 8 if alphabet is _Alphabet.GSM7 else udl, "user data")
    concat = None
    header_octets = 0
    if udhi:
        if not ud:
            raise ValueError("TP-UDHI is set but the user data is empty")
        header_octets = 1 + ud[0]
        if header_octets > len(ud):
            raise ValueError(f"user data header of {header_octets} octets overruns the user data")
        concat = _read_header(ud[1:header_octets])
    if alphabet is _Alphabet.GSM7:
        header_septets = (header_octets * 8 + 6) // 7
        if header_septets > udl:
            raise ValueError(f"user data header overruns TP-UDL ({udl} septets)")
        return concat, _gsm_decode(_unpack_septets(ud, udl)[header_septets:])
    body = ud[header_octets:]
    if alphabet is _Alphabet.UCS2:
        # Another sender may split a surrogate pair between parts: show U+FFFD rather
        # than return a str that cannot be stored as UTF-8.
        return concat, body.decode("utf-16-be", "replace")
    return concat, body.decode("latin-1")


def _read_header(header: bytes) -> Concat | None:
    concat = None
    position = 0
    while position < len(header):
        if position + 2 > len(header):
            raise ValueError("user data header ends inside an information element")
        iei, length = header[position], header[position + 1]
        data = header[position + 2 : position + 2 + length]
        if len(data) < length:
            raise ValueError(f"user data header element {iei:#04x} overruns the header")
        position += 2 + length
        if concat is not None:
            continue
        if iei == _IEI_CONCAT_8BIT and length == 3:
            reference, total, sequence = data
        elif iei == _IEI_CONCAT_16BIT and length == 4:
            reference, total, sequence = int.from_bytes(data[:2], "big"), data[2], data[3]
        else:
            continue
        # 23.040 §9.2.3.24.1: an element with a zero total or an out-of-range sequence is
        # ignored, not an error.
        if 1 <= sequence <= total:
            concat = Concat(reference=reference, total=total, sequence=sequence)
    return concat


def _unpack_septets(data: bytes, count: int) -> bytes:
    value = int.from_bytes(data, "little")
    return bytes((value >> (7 * index)) & 0x7F for index in range(count))


def _gsm_decode(septets: bytes) -> str:
    try:
        return septets.decode(_CODEC)
    except UnicodeDecodeError:
        pass
    # 23.038 §6.2.1.1: an escape to an unassigned extension code shows the basic-table
    # character of that code.
    chars: list[str] = []
    index = 0
    while index < len(septets):
        pair = septets[index : index + 2]
        if pair[0] == 0x1B and len(pair) == 2:
            try:
                chars.append(pair.decode(_CODEC))
            except UnicodeDecodeError:
                chars.append(pair[1:].decode(_CODEC))
            index += 2
        else:
            chars.append(pair[:1].decode(_CODEC))
            index += 1
    return "".join(chars)
