"""A call's audio quality from the switch's RTP statistics at hang-up.

FreeSWITCH 1.10.12 leaves ``rtp_audio_in_*`` on CHANNEL_HANGUP_COMPLETE of every leg that had
an audio RTP session (switch_core_media.c:set_stats; captures: ``esl_plain.raw``). What they
give, from switch_rtp.c, and what we make of them:

* ``in_mos``: FreeSWITCH's own score, 1 + 0.035 R + 7e-6 R (R - 60)(100 - R) with R the share of
  packets received without a flaw: taken as is;
* jitter: only the running variance of the packets' inter-arrival time is kept, as its minimum
  and maximum over the call (``in_jitter_min_variance`` / ``_max_variance``, ms^2). The mean
  jitter reported is the square root of their midpoint, in seconds: the standard deviation the
  variance settled around (the final variance itself is not exported);
* loss: ``in_flaw_total`` counts the packets missing from the sequence (plus a penalty for
  consecutive flaws), ``in_media_packet_count`` the audio packets received: lost / expected =
  flaws / (received + flaws).

A leg that received no audio (the captures' SIPp callers sent DTMF only) reads MOS 4.50 over
nothing: no quality is reported for it rather than a perfect score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

_IN = "variable_rtp_audio_in_"


@dataclass(frozen=True)
class CallQuality:
    mos: float
    jitter_s: float
    loss_ratio: float

    def as_summary(self) -> dict[str, float]:
        return {"mos": round(self.mos, 2), "jitter_ms": round(self.jitter_s * 1000, 2),
                "packet_loss": round(self.loss_ratio, 4)}


def _number(event: Any, name: str) -> float | None:
    text = event.get(_IN + name)
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def from_hangup(event: Any) -> CallQuality | None:
    """The quality of the leg ``event`` (its CHANNEL_HANGUP_COMPLETE) describes, or None when
    the switch kept no RTP statistics for it or it received no audio."""
    if event is None:
        return None
    received = _number(event, "media_packet_count")
    mos = _number(event, "mos")
    if not received or mos is None:
        return None
    flaws = _number(event, "flaw_total") or 0.0
    low = _number(event, "jitter_min_variance") or 0.0
    high = _number(event, "jitter_max_variance") or 0.0
    return CallQuality(mos=min(mos, 5.0), jitter_s=math.sqrt((low + high) / 2) / 1000,
                       loss_ratio=min(1.0, flaws / (received + flaws)))
