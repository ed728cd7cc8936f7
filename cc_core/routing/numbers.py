"""Caller numbers as carriers and FreeSWITCH hand them over, turned into one national form.

``normalise`` never raises: the caller ID is attacker-controlled (a SIP From header), so
anything it cannot read becomes ``NumberKind.INVALID`` with the original text kept for logs.

National form (``CallerNumber.national``):
- mobile: the 11 digits, ``13800138000`` (no country code, no leading trunk 0);
- landline: trunk 0 + area code + subscriber number, ``01088886666``, ``075512345678``;
- service: the digits as dialled, ``4008001234``, ``95588``, ``10086``;
- international: country code + number without ``+``/``00``, ``85223456789``.

What is accepted in front of a number: ``+86``, ``0086``, a bare ``86`` (only when what
follows is a whole valid number, so it cannot eat the start of a real number), a trunk
0 before a mobile (``013800138000``, how some gateways present mobiles), and one
carrier-select/IP prefix (``17951``, ``12593``...) which callers dial to get a cheaper
route and which some trunks pass on in the caller ID.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["CallerNumber", "NumberKind", "normalise", "CARRIER_PREFIXES", "ANONYMOUS_WORDS"]


class NumberKind(enum.StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    ANONYMOUS = "anonymous"
    SERVICE = "service"
    INTERNATIONAL = "international"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class CallerNumber:
    original: str
    kind: NumberKind
    national: str
    area_code: str | None = None

    @property
    def known(self) -> bool:
        """True when the number can be matched against rules and regions."""
        return self.kind not in (NumberKind.ANONYMOUS, NumberKind.INVALID)


# Carrier-select and IP-call prefixes (China Mobile 17950/17951/12593, China Telecom
# 17900/17901/17908/17909, China Unicom 17910/17911/10193). Only stripped when what
# follows is itself a valid number, so a real number that starts with these digits
# (12593 alone is a service number) is never cut.
CARRIER_PREFIXES: tuple[str, ...] = (
    "17900", "17901", "17908", "17909",
    "17910", "17911",
    "17950", "17951",
    "12593", "10193",
)

# What FreeSWITCH and upstream carriers put in caller_id_number for a withheld number.
ANONYMOUS_WORDS: frozenset[str] = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld", "null"}
)

# Longer input than this is not a phone number; refusing it early bounds the work
# done on hostile input.
MAX_INPUT_LENGTH = 40

# re.ASCII: \d would otherwise accept full-width and other Unicode digits, which no
# switch dials.
_ALLOWED = re.compile(r"\+?[0-9 ()\-.]*", re.ASCII)
_MOBILE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
# A subscriber number never starts with 0: that digit is the trunk prefix.
_LANDLINE = re.compile(r"(010|02[0-9]|0[3-9][0-9]{2})([1-9][0-9]{6,7})", re.ASCII)
_SERVICE = re.compile(
    r"(?:[48]00[0-9]{7}"          # 400 / 800 enterprise numbers
    r"|9[56][0-9]{3}(?:[0-9]{3})?"  # 95xxx / 96xxx and their 8-digit forms
    r"|1[0-9]{2}"                   # 110, 119, 120, 122, 114
    r"|1[0-9]{4})",                 # 10086, 10010, 12345, 12315...
    re.ASCII,
)
_INTERNATIONAL = re.compile(r"[1-9][0-9]{6,14}", re.ASCII)  # E.164: at most 15 digits


def normalise(raw: str | None) -> CallerNumber:
    """Read a caller number as it arrives from the switch; never raises."""
    if raw is None:
        return CallerNumber("", NumberKind.ANONYMOUS, "")
    if not isinstance(raw, str):  # defensive: callers type this as str, events may not
        return CallerNumber(repr(raw), NumberKind.INVALID, "")
    if len(raw) > MAX_INPUT_LENGTH:
        return _invalid(raw)
    text = raw.strip(" ")
    if text.lower() in ANONYMOUS_WORDS:
        return CallerNumber(raw, NumberKind.ANONYMOUS, "")
    if not _ALLOWED.fullmatch(text):
        return _invalid(raw)
    plus = text.startswith("+")
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return _invalid(raw)
    if digits.strip("0") == "":
        # FreeSWITCH's default caller ID for a withheld number is 0000000000.
        return CallerNumber(raw, NumberKind.ANONYMOUS, "")
    found = _read(digits, plus)
    if found is None:
        return _invalid(raw)
    kind, national, area = found
    return CallerNumber(raw, kind, national, area)


def _invalid(raw: str) -> CallerNumber:
    return CallerNumber(raw, NumberKind.INVALID, "")


_Read = tuple[NumberKind, str, str | None]


def _read(digits: str, plus: bool, carrier: bool = True) -> _Read | None:
    if plus:
        return _after_country_code(digits)
    if digits.startswith("00"):
        return _after_country_code(digits[2:])
    found = _domestic(digits)
    if found is not None:
        return found
    if digits.startswith("86"):
        # No domestic number starts with 86 (landlines start with 0, mobiles with 1),
        # so this is a country code written without + or 00.
        found = _national_significant(digits[2:])
        if found is not None:
            return found
    if not carrier:
        return None
    for prefix in CARRIER_PREFIXES:
        if digits.startswith(prefix) and len(digits) > len(prefix):
            # One prefix only: two in a row is not something a caller dials, but what
            # follows may itself start with the same digits (a 179 mobile).
            found = _read(digits[len(prefix):], False, carrier=False)
            if found is not None:
                return found
    return None


def _after_country_code(digits: str) -> _Read | None:
    if digits.startswith("86"):
        return _national_significant(digits[2:])
    if _INTERNATIONAL.fullmatch(digits):
        return NumberKind.INTERNATIONAL, digits, None
    return None


def _national_significant(nsn: str) -> _Read | None:
    """Digits after +86: no trunk 0 in principle, though "+86 (0)755..." is common."""
    found = _domestic(nsn)
    if found is None and not nsn.startswith("0"):
        found = _landline("0" + nsn)
    return found


def _domestic(digits: str) -> _Read | None:
    if _MOBILE.fullmatch(digits):
        return NumberKind.MOBILE, digits, None
    if digits.startswith("0") and _MOBILE.fullmatch(digits[1:]):
        return NumberKind.MOBILE, digits[1:], None
    if _SERVICE.fullmatch(digits):
        return NumberKind.SERVICE, digits, None
    return _landline(digits)


def _landline(digits: str) -> _Read | None:
    m = _LANDLINE.fullmatch(digits)
    if m is None:
        return None
    return NumberKind.LANDLINE, digits, m.group(1)
