"""Rating one call: pure arithmetic on integers (fen, seconds, milliseconds), no store.

Where billable time starts (the answer the answer mode defines), on one clock only:

* IVR mode: the caller's channel was answered before the first prompt, so the call is billed
  from ``answer_ms`` to ``end_ms`` (both the switch's ``*_uepoch``);
* greeting mode: the caller heard the greeting in early media, and billing starts when an
  agent answered: the talk time (``talk_ms``: the switch's bridge to its end). A greeting-mode
  call the platform answered itself (voicemail) is billed from that answer like IVR mode.

Not ``billsec``: the switch truncates it to whole seconds, and 1.9 s must be one increment of
6 s, not one second less than a full one. Billable time is rounded up to whole increments
(6 s or 60 s): 0 ms is nothing, 1 ms is one increment. Included minutes are used first, in
increments; what is left is charged at the rate per minute of the caller's kind, the total
rounded up to a whole fen once per call (``ceil(charged_s * rate / 60)``).

The rule at midnight: a call is rated entirely by the terms in force at its billable start
(package, rate period, package year of the included minutes), even when it runs past midnight
into a new rate period or year.
"""

from __future__ import annotations

from dataclasses import dataclass

INCREMENTS_S = (6, 60)


@dataclass(frozen=True)
class Terms:
    """What a call is rated with: the account's terms in force at its billable start."""

    increment_s: int
    rate_fen_per_minute: int
    included_left_s: int          # of the package year's included minutes, not used yet
    package: str = ""


@dataclass(frozen=True)
class Rated:
    status: str                   # "rated", or why nothing was billed: "not_answered"
    billable_ms: int
    billable_s: int               # rounded up to whole increments
    included_s: int               # taken from the included minutes
    charged_s: int
    rate_fen_per_minute: int
    fen: int
    package: str = ""

    def result(self) -> str:
        """The call record's ``billing_result``: compact, stable, readable by a person."""
        if self.status != "rated":
            return self.status
        return (f"rated package={self.package} billable_s={self.billable_s} "
                f"included_s={self.included_s} charged_s={self.charged_s} "
                f"rate={self.rate_fen_per_minute}")


def billable_start_ms(answer_mode: str, answer_ms: int | None, end_ms: int,
                      talk_ms: int | None) -> int | None:
    """The moment billing starts (switch clock), or None when the call is not billable."""
    if answer_mode == "greeting" and talk_ms is not None:
        return end_ms - talk_ms
    return answer_ms or None


def billable_ms(answer_mode: str, answer_ms: int | None, end_ms: int,
                talk_ms: int | None) -> int:
    start = billable_start_ms(answer_mode, answer_ms, end_ms, talk_ms)
    return 0 if start is None else max(0, end_ms - start)


def increments(ms: int, increment_s: int) -> int:
    step = increment_s * 1000
    return -(-ms // step)


def rate(ms: int, terms: Terms) -> Rated:
    if terms.increment_s not in INCREMENTS_S:
        raise ValueError(f"increment {terms.increment_s} s: use 6 or 60")
    billable_s = increments(max(0, ms), terms.increment_s) * terms.increment_s
    # Included minutes go in whole increments too (60 s a minute is a multiple of both).
    left = max(0, terms.included_left_s) // terms.increment_s * terms.increment_s
    included_s = min(billable_s, left)
    charged_s = billable_s - included_s
    fen = -(-charged_s * terms.rate_fen_per_minute // 60)
    return Rated("rated", max(0, ms), billable_s, included_s, charged_s,
                 terms.rate_fen_per_minute, fen, terms.package)


NOT_ANSWERED = Rated("not_answered", 0, 0, 0, 0, 0, 0)
