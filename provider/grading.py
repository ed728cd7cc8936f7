"""Vanity grading of a 400 number, explained rule by rule.

A 400 number is ``400`` + a carrier digit + 6 more (``4008 123 456``); the first four name the
carrier segment, so the grade is earned by the last six. Points add up from the rules below and
the total picks the grade; each rule that fired is listed with its points, so a salesperson can
say why 4008 888 888 costs what it costs.

* runs of one digit (AAA 20, AAAA 40, AAAAA 60, AAAAAA 80; the longest run counts);
* ABAB or AABB inside the six (20), ABCABC (20), AABBCC (35);
* ascending or descending sequences (3 digits 10, 4 digits 25, 5+ digits 40; the longest);
* lucky digits: each 8 +4, each 6 or 9 +3, ending in 8 another +5;
* 4 sounds like 死 (death): each 4 -6, ending in 4 another -10;
* sound-alikes a customer asks for: 520 (我爱你), 1314 (一生一世), 168 (一路发), 518 (我要发),
  +15 each;
* trade hints add no points but are named, for the sales team: 7 (吃, restaurants), 56
  (物流 sounds, logistics), 1688 (wholesale), 365 (always open).

Grades: S from 60 points, A from 35, B from 15, C below.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

__all__ = ["Grade", "Graded", "grade", "parse_number", "SEGMENTS", "NumberError"]

# Carrier segments of 400 numbers (product.md, "Number resources").
SEGMENTS: dict[str, str] = {"4008": "telecom", "4009": "telecom", "4001": "mobile",
                            "4007": "mobile", "4000": "unicom", "4006": "unicom"}
_SOUND_ALIKES = {"520": "520 (我爱你)", "1314": "1314 (一生一世)", "168": "168 (一路发)",
                 "518": "518 (我要发)"}
_TRADE_HINTS = {"7": "restaurant (7, 吃)", "56": "logistics (56)", "1688": "wholesale (1688)",
                "365": "always open (365)"}


class NumberError(ValueError):
    """A number that is not a 400 number of a known segment."""


class Grade(enum.StrEnum):
    S = "S"
    A = "A"
    B = "B"
    C = "C"


_THRESHOLDS = ((60, Grade.S), (35, Grade.A), (15, Grade.B))


@dataclass(frozen=True)
class Graded:
    number: str
    carrier: str
    grade: Grade
    points: int
    reasons: tuple[tuple[str, int], ...]
    hints: tuple[str, ...] = field(default=())

    def explain(self) -> str:
        parts = [f"{why} {pts:+d}" for why, pts in self.reasons] or ["no vanity rule"]
        return f"{self.number}: grade {self.grade} ({self.points} points: {', '.join(parts)})"


def parse_number(raw: str) -> tuple[str, str]:
    """(10-digit number, carrier) of ``4008-123-456``, ``400 812 3456``...; NumberError says
    what is wrong."""
    digits = re.sub(r"[\s\-]", "", raw or "")
    if not digits.isdigit() or not digits.isascii():
        raise NumberError(f"{raw!r} is not a 400 number: digits only (spaces and dashes "
                          "allowed), e.g. 4008-123-456")
    if len(digits) != 10 or not digits.startswith("400"):
        raise NumberError(f"{raw!r} is not a 400 number: 10 digits starting 400, "
                          "e.g. 4008123456")
    carrier = SEGMENTS.get(digits[:4])
    if carrier is None:
        raise NumberError(f"{raw!r} is in no carrier segment: 400 numbers start "
                          f"{', '.join(sorted(SEGMENTS))}")
    return digits, carrier


def _longest_run(s: str) -> int:
    best = run = 1
    for a, b in zip(s, s[1:], strict=False):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


def _longest_sequence(s: str) -> int:
    best = 1
    for step in (1, -1):
        run = 1
        for a, b in zip(s, s[1:], strict=False):
            run = run + 1 if int(b) - int(a) == step else 1
            best = max(best, run)
    return best


def _pairs(s: str) -> tuple[bool, bool, bool]:
    """(ABAB, AABB, AABBCC) anywhere in the six digits (A != B)."""
    abab = any(s[i] == s[i + 2] and s[i + 1] == s[i + 3] and s[i] != s[i + 1]
               for i in range(len(s) - 3))
    aabb = any(s[i] == s[i + 1] and s[i + 2] == s[i + 3] and s[i] != s[i + 2]
               for i in range(len(s) - 3))
    aabbcc = (len(s) == 6 and s[0] == s[1] and s[2] == s[3] and s[4] == s[5]
              and len({s[0], s[2], s[4]}) == 3)
    return abab, aabb, aabbcc


def grade(raw: str) -> Graded:
    number, carrier = parse_number(raw)
    tail = number[4:]
    reasons: list[tuple[str, int]] = []
    run = _longest_run(tail)
    if run >= 3:
        reasons.append((f"run of {run} x {_run_digit(tail, run)}",
                        {3: 20, 4: 40, 5: 60}.get(run, 80)))
    abab, aabb, aabbcc = _pairs(tail)
    if tail[:3] == tail[3:] and len(set(tail[:3])) > 1:
        reasons.append(("ABCABC", 20))
    if aabbcc:
        reasons.append(("AABBCC", 35))
    else:
        if abab:
            reasons.append(("ABAB", 20))
        if aabb and run < 4:
            reasons.append(("AABB", 20))
    seq = _longest_sequence(tail)
    if seq >= 3:
        reasons.append((f"sequence of {seq}", 10 if seq == 3 else 25 if seq == 4 else 40))
    lucky = sum(4 if d == "8" else 3 for d in tail if d in "689")
    if lucky:
        reasons.append(("lucky digits 6/8/9", lucky))
    if tail.endswith("8"):
        reasons.append(("ends in 8", 5))
    fours = tail.count("4")
    if fours:
        reasons.append((f"{fours} x 4 (死)", -6 * fours))
    if tail.endswith("4"):
        reasons.append(("ends in 4", -10))
    for pattern, name in _SOUND_ALIKES.items():
        if pattern in tail:
            reasons.append((f"sounds like {name}", 15))
    hints = tuple(name for pattern, name in _TRADE_HINTS.items() if pattern in tail)
    points = sum(p for _, p in reasons)
    g = next((g for floor, g in _THRESHOLDS if points >= floor), Grade.C)
    return Graded(number, carrier, g, points, tuple(reasons), hints)


def _run_digit(s: str, length: int) -> str:
    for i in range(len(s) - length + 1):
        if len(set(s[i:i + length])) == 1:
            return s[i]
    return s[0]
