"""The call quality read from a CHANNEL_HANGUP_COMPLETE's RTP statistics, on values in the
captures' formats (``%0.2f`` doubles, integer counts), worked out by hand."""

from __future__ import annotations

from cc_core.flow.quality import CallQuality, from_hangup


def _event(**stats: str) -> dict[str, str]:
    return {f"variable_rtp_audio_in_{k}": v for k, v in stats.items()}


def test_mos_jitter_and_loss_of_a_lossy_call() -> None:
    q = from_hangup(_event(media_packet_count="400", flaw_total="100", mos="3.82",
                           jitter_min_variance="32.00", jitter_max_variance="96.00"))
    # loss: 100 lost of 500 expected; jitter: sqrt((32 + 96) / 2) = 8 ms
    assert q == CallQuality(mos=3.82, jitter_s=0.008, loss_ratio=0.2)
    assert q.as_summary() == {"mos": 3.82, "jitter_ms": 8.0, "packet_loss": 0.2}


def test_no_audio_received_is_no_score_not_a_perfect_one() -> None:
    # the captures' SIPp caller: DTMF only, FreeSWITCH's untouched R = 100 -> MOS 4.50
    assert from_hangup(_event(media_packet_count="0", packet_count="10", mos="4.50")) is None
    assert from_hangup({"variable_billsec": "6"}) is None       # no RTP session at all
    assert from_hangup(None) is None


def test_garbage_values_give_no_score_rather_than_an_error() -> None:
    assert from_hangup(_event(media_packet_count="50", mos="nan")) is None
    assert from_hangup(_event(media_packet_count="x", mos="4.1")) is None
    q = from_hangup(_event(media_packet_count="50", mos="4.1", flaw_total="-3"))
    assert q is not None and q.loss_ratio == 0.0 and q.jitter_s == 0.0
