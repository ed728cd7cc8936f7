"""Black and white lists (黑白名单): does a rule set name this caller?

A list is built once from config and asked at the start of every call. Rules are put
through the same normaliser as callers, so "+86 138-0013-8000" in a tenant's list
matches the caller 13800138000 however the trunk presented it. Rules and match values
for international callers keep a leading "+" ("exact +85223456789", "prefix +1"), so
they never catch a domestic number with the same digits.

Cost of ``match``: a set lookup for the exact number, one per leading digit string of
the number for prefixes (at most 16), one for the area code; independent of how many
rules a tenant has.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cc_core.routing.numbers import CallerNumber, NumberKind, normalise

__all__ = ["Match", "NumberRules", "RuleKind"]


class RuleKind(enum.StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    AREA = "area"
    ANONYMOUS = "anonymous"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Match:
    kind: RuleKind
    value: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value} {self.value}" if self.value else self.kind.value


_SEPARATORS = re.compile(r"[ \-().]", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,15}", re.ASCII)
_AREA_CODE = re.compile(r"010|02[0-9]|0[3-9][0-9]{2}", re.ASCII)


@dataclass(frozen=True)
class NumberRules:
    """Rules as written in config; normalised sets are derived on construction.

    Raises ``ValueError`` naming the first rule that cannot be read and how to write it.
    """

    exact: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    area_codes: tuple[str, ...] = ()
    anonymous: bool = False
    invalid: bool = False
    _exact: frozenset[str] = field(init=False, repr=False, compare=False)
    _prefixes: frozenset[str] = field(init=False, repr=False, compare=False)
    _areas: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept any iterable (a YAML list) but keep the public fields immutable tuples.
        for name in ("exact", "prefixes", "area_codes"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(
                    f"{name} must be a list of strings, got the single string {value!r}; "
                    f"write [{value!r}]"
                )
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "_exact", frozenset(_exact_rule(r) for r in self.exact))
        object.__setattr__(self, "_prefixes", frozenset(_prefix_rule(r) for r in self.prefixes))
        object.__setattr__(self, "_areas", frozenset(_area_rule(r) for r in self.area_codes))

    @classmethod
    def build(
        cls,
        exact: Iterable[str] = (),
        prefixes: Iterable[str] = (),
        area_codes: Iterable[str] = (),
        *,
        anonymous: bool = False,
        invalid: bool = False,
    ) -> NumberRules:
        return cls(tuple(exact), tuple(prefixes), tuple(area_codes), anonymous, invalid)

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefixes) + len(self._areas)

    def match(self, number: CallerNumber) -> Match | None:
        if number.kind is NumberKind.ANONYMOUS:
            return Match(RuleKind.ANONYMOUS) if self.anonymous else None
        if number.kind is NumberKind.INVALID:
            return Match(RuleKind.INVALID) if self.invalid else None
        key = _key(number)
        if key in self._exact:
            return Match(RuleKind.EXACT, key)
        if self._prefixes:
            # len(key) is at most 16 ("+" and E.164's 15 digits): normalise bounds it.
            for end in range(1, len(key) + 1):
                head = key[:end]
                if head in self._prefixes:
                    return Match(RuleKind.PREFIX, head)
        if number.area_code is not None and number.area_code in self._areas:
            return Match(RuleKind.AREA, number.area_code)
        return None


def _exact_rule(rule: object) -> str:
    if not isinstance(rule, str):
        raise ValueError(f"exact rule {rule!r} is not a string; quote it in the config: '{rule}'")
    number = normalise(rule)
    if number.kind is NumberKind.ANONYMOUS:
        raise ValueError(
            f"exact rule {rule!r} is a withheld number, not a number; "
            "set anonymous: true to match callers who withhold their number"
        )
    if number.kind is NumberKind.INVALID:
        raise ValueError(
            f"exact rule {rule!r} is not a phone number; write a whole number such as "
            "13800138000, 010-88886666 (landlines with their area code), 4008001234 or "
            "+852 2345 6789, or use prefixes/area_codes for a range"
        )
    return _key(number)


def _key(number: CallerNumber) -> str:
    # International numbers keep their "+": "+1 415..." and the mobile "141..." share
    # digits, and a rule for one must never catch the other.
    return "+" + number.national if number.kind is NumberKind.INTERNATIONAL else number.national


def _prefix_rule(rule: object) -> str:
    if not isinstance(rule, str):
        raise ValueError(f"prefix rule {rule!r} is not a string; quote it in the config: '{rule}'")
    text = _SEPARATORS.sub("", rule.strip())
    international = False
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("+"):
        text, international = text[1:], True
    elif text.startswith("00") and len(text) > 2:
        text, international = text[2:], True
    if not _DIGITS.fullmatch(text):
        raise ValueError(
            f"prefix rule {rule!r} is not a run of 1 to 15 digits; write the leading "
            "digits of the numbers to match, e.g. '170' or '1380013' for a mobile segment "
            "or '0755' for a landline area"
        )
    if international:
        return "+" + text
    if text.startswith("01") and not text.startswith("010"):
        raise ValueError(
            f"prefix rule {rule!r} puts a 0 before a mobile segment, but callers are "
            f"compared without it; write '{text[1:]}'"
        )
    if text.startswith("86"):
        raise ValueError(
            f"prefix rule {rule!r} starts with 86, which no Chinese number does once "
            f"normalised; drop the country code and write '{text[2:]}'"
        )
    return text


def _area_rule(rule: object) -> str:
    if not isinstance(rule, str):
        raise ValueError(f"area code rule {rule!r} is not a string; quote it in the config: '0{rule}'")
    text = _SEPARATORS.sub("", rule.strip())
    if text.startswith("+86"):
        text = text[3:]
    if text and not text.startswith("0"):
        text = "0" + text
    if not _AREA_CODE.fullmatch(text):
        raise ValueError(
            f"area code rule {rule!r} is not a Chinese area code; write 010 or 020-029 for "
            "the 3-digit codes, or 0 and three digits (0755) for the others"
        )
    return text
