"""The RTP statistics FreeSWITCH 1.10.12 leaves on a channel at hang-up, simulated.

switch_core_state_machine.c:switch_core_session_hangup_state calls
switch_core_media_set_stats after the CS_HANGUP handlers (so after ``sip_hangup_disposition``,
the timestamps before it); switch_core_media.c:set_stats writes ``rtp_audio_<name>`` for a
channel that has an audio RTP session (a sofia leg whose media came up: answered or early
media; loopback legs have no media handle, a leg rejected or cancelled before media has no RTP
session), in the order below, integers with ``%`` SWITCH_SIZE_T_FMT and doubles with ``%0.2f``.
The captures (``esl_plain.raw``, every scenario) show exactly these names in this order.

How the values relate, after switch_rtp.c:

* check_jitter: ``in_mean_interval`` is the mean time between audio packets in ms (the ptime
  when the far end sends steadily); the running variance of that interval (ms^2) gives
  ``in_jitter_min_variance`` / ``in_jitter_max_variance``; a gap in sequence numbers adds its
  lost packets to the flaws (``in_flaw_total``);
* burstr_calculate: ``in_jitter_loss_rate`` = lost / received (isolated losses),
  ``in_jitter_burst_rate`` = (lost / bursts) x (1 - loss rate), 0 with no loss;
* do_mos: R = int((received - flaws) / received x 100) (``in_quality_percentage``; stays 100
  while nothing was received), MOS = 1 + 0.035 R + 7e-6 R (R - 60)(100 - R) (``in_mos``: 4.50
  at R = 100, as every capture shows).

The captures' SIPp callers sent no audio, only RFC 2833 DTMF: zero audio packets, MOS 4.50,
9, 19 and 48 DTMF packets for 1, 2 and 5 keys (``sending=False`` reproduces that). By default
the far end sends audio at 20 ms (PCMU: 160 bytes + the 12-byte RTP header, 172 bytes a
packet, as the captures' outbound counts show: 41968 bytes / 244 packets), with the loss and
jitter configured (``--rtp-loss``, ``--rtp-jitter-ms``, or ``sim_rtp`` per channel).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

PTIME_MS = 20
PACKET_BYTES = 172          # PCMU 20 ms payload + RTP header
DTMF_PACKET_BYTES = 16      # RFC 2833 event payload + RTP header (captures: 160 B / 10 pkts)
# The running variance moves around its final value; the min and max it reached, relative
# to the final variance (a plausible spread; FreeSWITCH reports only these two).
MIN_VARIANCE_FACTOR = 0.5
MAX_VARIANCE_FACTOR = 1.5


@dataclass(frozen=True)
class RtpQuality:
    """What the far end's audio looks like on arrival."""

    loss: float = 0.0          # fraction of its packets lost on the way, 0..1
    jitter_ms: float = 2.0     # standard deviation of the packets' inter-arrival time, ms
    sending: bool = True       # False: it sends no audio (the captures' SIPp callers)

    def update(self, **changes: object) -> RtpQuality:
        return replace(self, **changes)  # type: ignore[arg-type]


def parse_settings(base: RtpQuality, items: list[str]) -> RtpQuality:
    """``loss=0.02 jitter_ms=8 sending=0`` over ``base``; ValueError says what is wrong."""
    out = base
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: want name=value")
        if name == "loss":
            loss = float(value)
            if not 0 <= loss < 1:
                raise ValueError("loss is a fraction of packets, 0 <= loss < 1")
            out = out.update(loss=loss)
        elif name == "jitter_ms":
            jitter = float(value)
            if not 0 <= jitter <= 1000:
                raise ValueError("jitter_ms is in milliseconds, 0..1000")
            out = out.update(jitter_ms=jitter)
        elif name == "sending":
            if value not in ("0", "1"):
                raise ValueError("sending is 0 or 1")
            out = out.update(sending=value == "1")
        else:
            raise ValueError(f"unknown setting {name!r} (loss, jitter_ms, sending)")
    return out


def _mos(r: float) -> float:
    return 1 + 0.035 * r + 0.000007 * r * (r - 60) * (100 - r)


def dtmf_packets(digits: int) -> int:
    """RFC 2833 packets a caller's keys make (captures: 9, 19, 48 for 1, 2, 5 keys)."""
    return 10 * digits - 1 if digits > 0 else 0


def audio_stats(media_s: float, quality: RtpQuality, *, dtmf_digits: int = 0,
                sent_s: float | None = None) -> list[tuple[str, str]]:
    """``rtp_audio_*`` variables of a channel whose media was up ``media_s`` seconds
    (``sent_s``: how long the switch sent audio to it, default the same)."""
    expected = int(media_s * 1000 / PTIME_MS) if quality.sending else 0
    lost = int(round(expected * quality.loss))
    audio = expected - lost
    dtmf = dtmf_packets(dtmf_digits)
    sent = int((media_s if sent_s is None else sent_s) * 1000 / PTIME_MS)
    if audio > 0:
        variance = quality.jitter_ms ** 2
        min_var, max_var = variance * MIN_VARIANCE_FACTOR, variance * MAX_VARIANCE_FACTOR
        mean_interval = float(PTIME_MS) * expected / audio
        r = int((audio - lost) / audio * 100)
        r = 100 if r < 0 or r > 100 else r
        loss_rate = lost / audio
        burst_rate = (1 - loss_rate) if lost else 0.0
    else:
        min_var = max_var = mean_interval = loss_rate = burst_rate = 0.0
        r = 100
    i = str
    f = "{:.2f}".format   # switch_core_media.c add_stat_double: "%0.2f"
    return [
        ("rtp_audio_in_raw_bytes", i(audio * PACKET_BYTES + dtmf * DTMF_PACKET_BYTES)),
        ("rtp_audio_in_media_bytes", i(audio * PACKET_BYTES)),
        ("rtp_audio_in_packet_count", i(audio + dtmf)),
        ("rtp_audio_in_media_packet_count", i(audio)),
        # reads that found no packet: a lost one leaves its slot empty
        ("rtp_audio_in_skip_packet_count", i(lost)),
        ("rtp_audio_in_jitter_packet_count", "0"),   # no jitter buffer unless configured
        ("rtp_audio_in_dtmf_packet_count", i(dtmf)),
        ("rtp_audio_in_cng_packet_count", "0"),
        ("rtp_audio_in_flush_packet_count", "1" if dtmf else "0"),
        ("rtp_audio_in_largest_jb_size", "0"),
        ("rtp_audio_in_jitter_min_variance", f(min_var)),
        ("rtp_audio_in_jitter_max_variance", f(max_var)),
        ("rtp_audio_in_jitter_loss_rate", f(loss_rate)),
        ("rtp_audio_in_jitter_burst_rate", f(burst_rate)),
        ("rtp_audio_in_mean_interval", f(mean_interval)),
        ("rtp_audio_in_flaw_total", i(lost)),
        ("rtp_audio_in_quality_percentage", f(float(r))),
        ("rtp_audio_in_mos", f(_mos(r))),
        ("rtp_audio_out_raw_bytes", i(sent * PACKET_BYTES)),
        ("rtp_audio_out_media_bytes", i(sent * PACKET_BYTES)),
        ("rtp_audio_out_packet_count", i(sent)),
        ("rtp_audio_out_media_packet_count", i(sent)),
        ("rtp_audio_out_skip_packet_count", "0"),
        ("rtp_audio_out_dtmf_packet_count", "0"),
        ("rtp_audio_out_cng_packet_count", "0"),
        ("rtp_audio_rtcp_packet_count", "0"),    # RTCP is off unless the profile enables it
        ("rtp_audio_rtcp_octet_count", "0"),
    ]


__all__ = ["RtpQuality", "audio_stats", "dtmf_packets", "parse_settings"]
