"""Every way a caller ID reaches us must end as one national form, or as INVALID: never
an exception, because the caller controls the SIP From header."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cc_core.routing.numbers import CallerNumber, NumberKind, normalise

M, L, A, S, INTL, X = (
    NumberKind.MOBILE,
    NumberKind.LANDLINE,
    NumberKind.ANONYMOUS,
    NumberKind.SERVICE,
    NumberKind.INTERNATIONAL,
    NumberKind.INVALID,
)

# raw caller ID -> (kind, national, area code); written by hand.
TABLE: list[tuple[str, NumberKind, str, str | None]] = [
    # mobiles, however the trunk dresses them
    ("13800138000", M, "13800138000", None),
    ("+8613800138000", M, "13800138000", None),
    ("+86 138-0013-8000", M, "13800138000", None),
    ("008613800138000", M, "13800138000", None),
    ("8613800138000", M, "13800138000", None),
    ("013800138000", M, "13800138000", None),
    ("+86 013800138000", M, "13800138000", None),
    ("0086013800138000", M, "13800138000", None),
    ("(138) 0013 8000", M, "13800138000", None),
    ("  19912345678 ", M, "19912345678", None),
    ("16612345678", M, "16612345678", None),
    # carrier-select / IP prefixes in front of the number
    ("1795113800138000", M, "13800138000", None),
    ("17911 13912345678", M, "13912345678", None),
    ("12593-13800138000", M, "13800138000", None),
    ("1790901088886666", L, "01088886666", "010"),
    ("10193075512345678", L, "075512345678", "0755"),
    ("17951013800138000", M, "13800138000", None),
    ("179518613800138000", M, "13800138000", None),
    ("1795117951 13800138000", X, "", None),  # one prefix, never two
    ("1795117900000000", M, "17900000000", None),  # found by hypothesis: a mobile
    # that starts like a carrier prefix is not a second prefix
    # landlines
    ("01088886666", L, "01088886666", "010"),
    ("(010) 8888-6666", L, "01088886666", "010"),
    ("010-88886666", L, "01088886666", "010"),
    ("02161234567", L, "02161234567", "021"),
    ("075512345678", L, "075512345678", "0755"),
    ("0755 1234567", L, "07551234567", "0755"),
    ("0898-65123456", L, "089865123456", "0898"),
    ("+86 10 8888 6666", L, "01088886666", "010"),
    ("+86 755 1234 5678", L, "075512345678", "0755"),
    ("+86 (0)755 12345678", L, "075512345678", "0755"),
    ("0086 21 61234567", L, "02161234567", "021"),
    ("861088886666", L, "01088886666", "010"),
    # service numbers
    ("4008001234", S, "4008001234", None),
    ("400-800-1234", S, "4008001234", None),
    ("8008101234", S, "8008101234", None),
    ("+86 400 800 1234", S, "4008001234", None),
    ("95588", S, "95588", None),
    ("95105888", S, "95105888", None),
    ("96110", S, "96110", None),
    ("10086", S, "10086", None),
    ("12345", S, "12345", None),
    ("12593", S, "12593", None),  # the prefix alone is a service number, not stripped
    ("110", S, "110", None),
    # international
    ("+85223456789", INTL, "85223456789", None),
    ("00852 2345 6789", INTL, "85223456789", None),
    ("+1 (415) 555-0100", INTL, "14155550100", None),
    ("+44 20 7946 0958", INTL, "442079460958", None),
    # anonymous forms FreeSWITCH and carriers use
    ("anonymous", A, "", None),
    ("Anonymous", A, "", None),
    ("ANONYMOUS", A, "", None),
    ("0000000000", A, "", None),
    ("", A, "", None),
    ("   ", A, "", None),
    ("unknown", A, "", None),
    ("restricted", A, "", None),
    ("private", A, "", None),
    ("Private", A, "", None),
    # not numbers
    ("88886666", X, "", None),  # local number without its area code
    ("1380013800", X, "", None),  # a digit short
    ("138001380000", X, "", None),  # a digit long
    ("12813800138", X, "", None),  # 12x is not a mobile segment
    ("0755123456", X, "", None),  # subscriber part too short
    ("07550123456", X, "", None),  # subscriber part starts with the trunk 0
    ("01188886666", X, "", None),  # 011 is no area code
    ("+0755 12345678", X, "", None),
    ("+", X, "", None),
    ("---", X, "", None),
    ("1380013800+0", X, "", None),
    ("abc", X, "", None),
    ("sip:13800138000@example.com", X, "", None),
    ("138%0A00138000", X, "", None),
    ("13800138000%00", X, "", None),
    ("13800138000\n", X, "", None),
    ("138\x0000138000", X, "", None),
    ("13800138000\r\nX-Injected: 1", X, "", None),
    ("１３８００１３８０００", X, "", None),  # full-width digits
    ("١٣٨٠٠١٣٨٠٠٠", X, "", None),  # Arabic-Indic digits
    ("138\u00a00013\u00a08000", X, "", None),  # no-break spaces
    ("9" * 41, X, "", None),
    ("1" * 10_000, X, "", None),
    ("+1234567890123456", X, "", None),  # longer than E.164 allows
]


@pytest.mark.parametrize(("raw", "kind", "national", "area"), TABLE)
def test_table(raw: str, kind: NumberKind, national: str, area: str | None) -> None:
    got = normalise(raw)
    assert (got.kind, got.national, got.area_code) == (kind, national, area)
    assert got.original == raw


def test_none_is_anonymous() -> None:
    assert normalise(None) == CallerNumber("", A, "", None)


def test_result_is_frozen() -> None:
    n = normalise("13800138000")
    with pytest.raises(AttributeError):
        n.national = "13900139000"  # type: ignore[misc]


def test_known_is_false_only_for_anonymous_and_invalid() -> None:
    assert normalise("13800138000").known
    assert normalise("4008001234").known
    assert not normalise("anonymous").known
    assert not normalise("abc").known


def test_non_string_input_is_invalid_not_an_exception() -> None:
    assert normalise(13800138000).kind is X  # type: ignore[arg-type]
    assert normalise(b"13800138000").kind is X  # type: ignore[arg-type]


@given(st.text(max_size=60))
def test_never_raises_and_keeps_the_original(raw: str) -> None:
    got = normalise(raw)
    assert got.original == raw
    if got.kind in (A, X):
        assert got.national == ""
    else:
        assert got.national.isascii() and got.national.isdigit()


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_any_mobile_survives_every_dressing(mobile: str) -> None:
    for dressed in (
        mobile,
        "+86" + mobile,
        "0086" + mobile,
        "86" + mobile,
        "0" + mobile,
        "17951" + mobile,
        f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
    ):
        got = normalise(dressed)
        assert (got.kind, got.national, got.area_code) == (M, mobile, None), dressed
