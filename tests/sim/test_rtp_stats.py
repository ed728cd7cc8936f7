"""The RTP statistics the simulator leaves on CHANNEL_HANGUP_COMPLETE: FreeSWITCH's formulas
(switch_rtp.c do_mos / burstr_calculate / check_jitter) on configured loss and jitter, worked
out by hand here; names, order and formats held to the captures by test_header_sets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fssim.rtpstats import RtpQuality, audio_stats
from tests.sim.simclient import SimClient, running_sim


def _stats(*args: object, **kw: object) -> dict[str, str]:
    return {k.removeprefix("rtp_audio_"): v
            for k, v in audio_stats(*args, **kw)}  # type: ignore[arg-type]


def test_five_percent_loss_over_ten_seconds() -> None:
    s = _stats(10.0, RtpQuality(loss=0.05, jitter_ms=4.0))
    # 500 packets of 20 ms expected, 25 lost, 475 received (172 bytes each)
    assert (s["in_packet_count"], s["in_media_packet_count"], s["in_flaw_total"]) == \
        ("475", "475", "25")
    assert s["in_media_bytes"] == s["in_raw_bytes"] == str(475 * 172)
    # R = int((475 - 25) / 475 * 100) = 94; MOS = 1 + 0.035*94 + 7e-6*94*34*6 = 4.4242
    assert (s["in_quality_percentage"], s["in_mos"]) == ("94.00", "4.42")
    # loss rate 25/475 = 0.0526; burst rate 1 - 0.0526; mean interval 20 ms x 500/475
    assert (s["in_jitter_loss_rate"], s["in_jitter_burst_rate"], s["in_mean_interval"]) == \
        ("0.05", "0.95", "21.05")
    # variance 4^2 = 16 ms^2, its running min and max around it
    assert (s["in_jitter_min_variance"], s["in_jitter_max_variance"]) == ("8.00", "24.00")
    assert s["out_packet_count"] == "500"


def test_a_clean_call_scores_the_top_mos() -> None:
    s = _stats(60.0, RtpQuality())
    assert (s["in_mos"], s["in_quality_percentage"], s["in_flaw_total"]) == \
        ("4.50", "100.00", "0")
    assert (s["in_jitter_loss_rate"], s["in_jitter_burst_rate"]) == ("0.00", "0.00")
    assert s["in_packet_count"] == "3000" and s["in_mean_interval"] == "20.00"


def test_a_silent_far_end_reads_like_the_captures_sipp_caller() -> None:
    # ivr_then_agent's caller: one key, no audio: 9 DTMF packets, nothing else, MOS 4.50
    s = _stats(6.0, RtpQuality(sending=False), dtmf_digits=1)
    assert (s["in_media_packet_count"], s["in_dtmf_packet_count"], s["in_mos"],
            s["in_quality_percentage"], s["in_mean_interval"]) == \
        ("0", "9", "4.50", "100.00", "0.00")


@pytest.fixture
def client() -> Iterator[SimClient]:
    # 1 ms between answer and hang-up is 2 s of simulated media: ~100 packets a leg
    with running_sim(time_scale=2000.0) as addr, SimClient(*addr) as c:
        yield c


def test_sim_rtp_sets_one_legs_audio_and_the_default(client: SimClient) -> None:
    assert client.api("sim_rtp default jitter_ms=3") == "+OK loss=0 jitter_ms=3 sending=1\n"
    uids = []
    for _ in range(3):
        reply = client.api("sim_inbound 4915550001 4005550101")
        uid = reply.split()[1]
        client.wait_event(uid, "CHANNEL_PARK")
        assert client.api(f"uuid_answer {uid}") == "+OK\n"
        uids.append(uid)
    assert client.api(f"sim_rtp {uids[0]} loss=0.2").startswith("+OK loss=0.2 jitter_ms=3")
    assert client.api(f"sim_rtp {uids[1]} sending=0").startswith("+OK")
    assert client.api(f"sim_rtp {uids[0]} loss=1.5").startswith("-ERR loss")
    assert client.api("sim_rtp 00000000-0000-0000-0000-000000000000 loss=0").startswith("-ERR")
    assert client.api(f"sim_rtp {uids[0]} volume=11").startswith("-ERR unknown setting")
    ended = {}
    for uid in uids:
        assert client.api(f"uuid_kill {uid}") == "+OK\n"
        ended[uid] = client.wait_event(uid, "CHANNEL_HANGUP_COMPLETE")
    lossy, silent, clean = (ended[u] for u in uids)
    assert float(lossy.get("variable_rtp_audio_in_mos") or 0) < 4.5
    assert lossy.get("variable_rtp_audio_in_jitter_max_variance") == "13.50"   # 3^2 x 1.5
    assert silent.get("variable_rtp_audio_in_media_packet_count") == "0"
    assert clean.get("variable_rtp_audio_in_mos") == "4.50"
    assert clean.get("variable_rtp_audio_in_jitter_min_variance") == "4.50"     # 3^2 x 0.5


def test_twenty_percent_loss_rates_are_per_packet_received() -> None:
    s = _stats(10.0, RtpQuality(loss=0.2))
    # 500 expected, 100 lost, 400 received: loss rate 100/400 (burstr_calculate divides by
    # what was received), R = int(300/400 x 100) = 75, MOS = 1 + 2.625 + 7e-6*75*15*25
    assert (s["in_jitter_loss_rate"], s["in_jitter_burst_rate"]) == ("0.25", "0.75")
    assert (s["in_quality_percentage"], s["in_mos"], s["in_mean_interval"]) == \
        ("75.00", "3.82", "25.00")
