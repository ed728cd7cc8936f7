"""Numbers spoken from recordings of single numerals, read the way Mandarin reads them.

A queue tells a waiting caller how many are ahead and how long the wait is; the switch has no
Chinese ``say`` module in a stock build (the lab builds ``mod_say_en`` only), so the core
spells the number out as a list of files and plays them as one ``file_string://``. The
recordings are ``0`` ... ``9``, ``10`` (十), ``100`` (百), ``1000`` (千) and ``10000`` (万).

Rules (for 0 <= n < 10^8): each non-zero digit is said with its unit; a run of zeros inside
the number is said once as 零 (1005: 一千零五, 1050: 一千零五十), zeros at the end are silent
(200: 二百); a leading 1 of the tens is dropped (12: 十二, but 112: 一百一十二); above 9999
the count of ten-thousands comes first, then 万, then the rest (10005: 一万零五).
"""

from __future__ import annotations

MAX_SPOKEN = 99_999_999


def numerals(n: int) -> list[int]:
    """The numerals to play for ``n``, e.g. 105 -> [1, 100, 0, 5]."""
    if not 0 <= n <= MAX_SPOKEN:
        raise ValueError(f"{n} cannot be spoken: numbers from 0 to {MAX_SPOKEN} only")
    if n == 0:
        return [0]
    high, low = divmod(n, 10_000)
    if not high:
        return _below_10000(low, leading=True)
    out = [*_below_10000(high, leading=True), 10_000]
    if low:
        if low < 1000:
            out.append(0)           # 10005: 一万零五, 10500: 一万零五百
        out.extend(_below_10000(low, leading=False))
    return out


def _below_10000(n: int, *, leading: bool) -> list[int]:
    digits = [n // 1000, n // 100 % 10, n // 10 % 10, n % 10]
    units = [1000, 100, 10, 1]
    out: list[int] = []
    started = False        # a non-zero digit was said already
    zero_pending = False
    for d, unit in zip(digits, units, strict=True):
        if d == 0:
            zero_pending = started
            continue
        if zero_pending:
            out.append(0)
            zero_pending = False
        # 十二 rather than 一十二, when the tens open the number
        if not (unit == 10 and d == 1 and not started and leading):
            out.append(d)
        if unit != 1:
            out.append(unit)
        started = True
    return out


def files(n: int, digits: str) -> list[str]:
    """The recordings for ``n``: ``digits`` is a folder (``<folder>/<numeral>.wav``) or a path
    holding ``{n}``."""
    template = digits if "{n}" in digits else digits.rstrip("/") + "/{n}.wav"
    return [template.replace("{n}", str(x)) for x in numerals(n)]
