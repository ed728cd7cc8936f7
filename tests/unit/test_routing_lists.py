"""A blacklist that misses a harasser, or a whitelist that lets everyone jump the queue,
is what the tenant notices; so is a config typo that silently matches nothing."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cc_core.routing.lists import Match, NumberRules, RuleKind
from cc_core.routing.numbers import normalise

RULES = NumberRules.build(
    exact=["+86 138-0013-8000", "010-8888 6666", "400 800 1234", "+852 2345 6789"],
    prefixes=["170", "1380013", "+44", "95588"],
    area_codes=["0755", "21"],
)

# caller as the trunk sends it -> what must match, written by hand.
CASES: list[tuple[str, str | None]] = [
    ("13800138000", "exact 13800138000"),
    ("+8613800138000", "exact 13800138000"),
    ("013800138000", "exact 13800138000"),
    ("1795113800138000", "exact 13800138000"),
    ("01088886666", "exact 01088886666"),
    ("+86 10 8888 6666", "exact 01088886666"),
    ("4008001234", "exact 4008001234"),
    ("0085223456789", "exact +85223456789"),
    ("17012345678", "prefix 170"),
    ("+86 170 0000 0000", "prefix 170"),
    ("13800131234", "prefix 1380013"),
    ("+442079460958", "prefix +44"),
    ("95588", "prefix 95588"),  # a prefix as long as the number still matches
    ("075512345678", "area 0755"),
    ("0755-1234567", "area 0755"),
    ("02161234567", "area 021"),
    # near misses
    ("13900138000", None),
    ("13800141234", None),
    ("17112345678", None),
    ("01088886667", None),
    ("075712345678", None),  # 0757 is Foshan, not Shenzhen
    ("02061234567", None),
    ("13410010000", None),  # a Shenzhen mobile: area rules are for landlines
    ("+85223456780", None),
    ("anonymous", None),  # flags off
    ("garbage", None),
]


@pytest.mark.parametrize(("caller", "expected"), CASES)
def test_match(caller: str, expected: str | None) -> None:
    got = RULES.match(normalise(caller))
    assert (str(got) if got else None) == expected


def test_match_names_kind_and_value() -> None:
    assert RULES.match(normalise("17012345678")) == Match(RuleKind.PREFIX, "170")


@pytest.mark.parametrize(
    ("caller", "anonymous", "invalid", "expected"),
    [
        ("anonymous", True, False, "anonymous"),
        ("0000000000", True, False, "anonymous"),
        ("", True, False, "anonymous"),
        (None, True, False, "anonymous"),
        ("anonymous", False, True, None),
        ("abc", False, True, "invalid"),
        ("138%0A00138000", False, True, "invalid"),
        ("abc", True, False, None),
        ("13800138000", True, True, None),
    ],
)
def test_flags(caller: str | None, anonymous: bool, invalid: bool, expected: str | None) -> None:
    rules = NumberRules.build(anonymous=anonymous, invalid=invalid)
    got = rules.match(normalise(caller))
    assert (str(got) if got else None) == expected


def test_international_rules_never_catch_domestic_callers() -> None:
    # +1 415 555 0100 and the mobile 141 5555 0100 share every digit.
    rules = NumberRules.build(exact=["+1 415 555 0100"], prefixes=["+1", "001 212"])
    assert str(rules.match(normalise("+14155550100"))) == "exact +14155550100"
    assert str(rules.match(normalise("0012125550100"))) == "prefix +1"
    assert rules.match(normalise("14155550100")) is None
    assert rules.match(normalise("13800138000")) is None
    assert rules.match(normalise("12125")) is None  # a domestic service number
    domestic = NumberRules.build(exact=["14155550100"], prefixes=["1"])
    assert rules.match(normalise("14155550100")) is None
    assert str(domestic.match(normalise("14155550100"))) == "exact 14155550100"
    assert domestic.match(normalise("+14155550101")) is None


def test_empty_rules_match_nothing() -> None:
    rules = NumberRules()
    for caller in ("13800138000", "01088886666", "anonymous", "garbage"):
        assert rules.match(normalise(caller)) is None


def test_rules_are_frozen_and_keep_what_was_written() -> None:
    with pytest.raises(AttributeError):
        RULES.anonymous = True  # type: ignore[misc]
    assert RULES.exact[0] == "+86 138-0013-8000"
    assert len(RULES) == 10


def test_a_yaml_list_is_accepted() -> None:
    rules = NumberRules(exact=["13800138000"], prefixes=["170"])  # type: ignore[arg-type]
    assert str(rules.match(normalise("13800138000"))) == "exact 13800138000"


@pytest.mark.parametrize(
    ("kwargs", "names", "fix"),
    [
        ({"exact": ["88886666"]}, "'88886666'", "area code"),
        ({"exact": ["1380013800"]}, "'1380013800'", "whole number"),
        ({"exact": ["anonymous"]}, "'anonymous'", "anonymous: true"),
        ({"exact": [""]}, "''", "anonymous: true"),
        ({"exact": [13800138000]}, "13800138000", "quote it"),
        ({"exact": "13800138000"}, "'13800138000'", "['13800138000']"),
        ({"prefixes": ["13a"]}, "'13a'", "leading digits"),
        ({"prefixes": [""]}, "''", "leading digits"),
        ({"prefixes": ["1" * 16]}, "'" + "1" * 16 + "'", "1 to 15 digits"),
        ({"prefixes": ["86138"]}, "'86138'", "write '138'"),
        ({"prefixes": ["0138"]}, "'0138'", "write '138'"),
        ({"area_codes": ["0011"]}, "'0011'", "0755"),
        ({"area_codes": ["07555"]}, "'07555'", "0755"),
        ({"area_codes": ["shenzhen"]}, "'shenzhen'", "0755"),
        ({"area_codes": [755]}, "755", "'0755'"),
    ],
)
def test_malformed_rule_names_rule_and_fix(kwargs: dict[str, object], names: str, fix: str) -> None:
    with pytest.raises(ValueError) as err:
        NumberRules(**kwargs)  # type: ignore[arg-type]
    assert names in str(err.value) and fix in str(err.value)


def _time_matches(rules: NumberRules, callers: list, rounds: int = 200) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            for c in callers:
                rules.match(c)
        best = min(best, time.perf_counter() - start)
    return best


def test_hundred_thousand_rules_cost_no_more_than_ten() -> None:
    # Mobiles 13900000000.. and prefixes 1500000..: none of them is one of the callers,
    # so every lookup walks the whole number: the worst case.
    big = NumberRules.build(
        exact=[str(13_900_000_000 + i) for i in range(100_000)],
        prefixes=[str(1_500_000 + i) for i in range(100_000)],
        area_codes=[f"0{n}" for n in range(300, 1000)],
    )
    small = NumberRules.build(exact=["13900000000"], prefixes=["1500000"], area_codes=["0300"])
    callers = [normalise(c) for c in ("18612345678", "02161234567", "4008001234", "+442079460958")]
    assert big.match(normalise("13900099999")) == Match(RuleKind.EXACT, "13900099999")
    assert big.match(normalise("15000991234")) == Match(RuleKind.PREFIX, "1500099")
    for c in callers:
        assert big.match(c) is None
    # A scan over the rules would be ~10,000x slower; the factor allows for cache effects
    # of big sets and a noisy shared machine.
    assert _time_matches(big, callers) < 5 * _time_matches(small, callers)


_mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@given(data=st.data())
def test_agrees_with_a_plain_scan(data: st.DataObject) -> None:
    # The oracle is the obvious O(rules) scan; only the answer must be the same. Half
    # the callers are built to start with one of the prefixes, or a random number would
    # almost never hit a 7-digit one.
    prefixes = data.draw(st.lists(st.from_regex(r"1[3-9][0-9]{0,6}", fullmatch=True), max_size=30))
    exact = data.draw(st.lists(_mobiles, max_size=10))
    start = data.draw(st.sampled_from([*prefixes, *exact, ""]))
    caller = (start + data.draw(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)))[:11]
    rules = NumberRules.build(exact=exact, prefixes=prefixes)
    expected = caller in exact or any(caller.startswith(p) for p in prefixes)
    got = rules.match(normalise(caller))
    assert (got is not None) is expected
    if got is not None and got.kind is RuleKind.PREFIX:
        assert got.value in prefixes and caller.startswith(got.value)


@given(mobile=_mobiles)
def test_a_rule_matches_however_either_side_is_dressed(mobile: str) -> None:
    rule = f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    rules = NumberRules.build(exact=[rule])
    for caller in (mobile, "0086" + mobile, "0" + mobile, "12593" + mobile):
        assert rules.match(normalise(caller)) == Match(RuleKind.EXACT, mobile)
