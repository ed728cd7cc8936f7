"""Vanity grades on a table graded by hand with the rules of provider/grading.py."""

from __future__ import annotations

import pytest

from provider.grading import Grade, NumberError, grade, parse_number

# number, grade, points, trade hints: each total worked out by hand from the rules
HAND_GRADED = [
    ("4008888888", Grade.S, 109, ()),       # run of 6 (80) + six 8s (24) + ends in 8 (5)
    ("4001000000", Grade.S, 80, ()),        # run of 6
    ("4009112233", Grade.A, 35, ()),        # AABBCC
    ("4006520520", Grade.A, 35, ()),        # ABCABC (20) + 520 (15)
    ("4008168168", Grade.A, 54, ()),        # ABCABC 20, 6+8+6+8 (14), ends in 8 (5), 168 (15)
    ("4008520000", Grade.A, 55, ()),        # run of 4 (40) + 520 (15)
    ("4001234567", Grade.A, 37, ("restaurant (7, 吃)", "logistics (56)")),  # seq 6, one 6, one 4
    ("4007444444", Grade.B, 34, ()),        # run of 6 (80), six 4s (-36), ends in 4 (-10)
    ("4000565656", Grade.B, 29, ("logistics (56)",)),   # ABAB (20) + three 6s (9)
    ("4008123457", Grade.B, 34, ("restaurant (7, 吃)",)),  # sequence of 5 (40), one 4 (-6)
    ("4006137982", Grade.C, 7, ("restaurant (7, 吃)",)),   # a 9 and an 8
    ("4006444123", Grade.C, 12, ()),        # run of 3 (20), 123 (10), three 4s (-18)
]


@pytest.mark.parametrize(("number", "expected", "points", "hints"), HAND_GRADED)
def test_grades_match_the_hand_graded_table(number: str, expected: Grade, points: int,
                                            hints: tuple[str, ...]) -> None:
    g = grade(number)
    assert (g.grade, g.points, g.hints) == (expected, points, hints), g.explain()


def test_the_explanation_names_every_rule_that_fired() -> None:
    text = grade("4008168168").explain()
    assert text == ("4008168168: grade A (54 points: ABCABC +20, lucky digits 6/8/9 +14, "
                    "ends in 8 +5, sounds like 168 (一路发) +15)")


def test_numbers_are_read_with_separators_and_their_carrier() -> None:
    assert parse_number("4008-123-456") == ("4008123456", "telecom")
    assert parse_number("400 112 3456") == ("4001123456", "mobile")
    assert parse_number("4006 123456") == ("4006123456", "unicom")


@pytest.mark.parametrize(("raw", "why"), [
    ("40081234", "10 digits starting 400"),
    ("8008123456", "10 digits starting 400"),
    ("4003123456", "in no carrier segment"),
    ("4008１２３456", "digits only"),       # full-width digits
    ("4008-12x-456", "digits only"),
])
def test_a_malformed_number_is_refused_saying_why(raw: str, why: str) -> None:
    with pytest.raises(NumberError, match=why):
        grade(raw)
