"""Agent phones the ACD must survive: one that answers and hangs up at once, one that never
hangs up by itself (``sim_endpoint <contact> answer <delay> 0`` / ``answer <delay>``)."""

from __future__ import annotations

from tests.sim.simclient import SimClient, running_sim


def test_answer_then_hang_up_at_once() -> None:
    with running_sim(time_scale=20.0) as addr, SimClient(*addr) as client:
        client.api("sim_endpoint sofia/internal/2201@127.0.0.1 answer 0 0")
        reply = client.bgapi("originate sofia/internal/2201@127.0.0.1 &park()")
        assert reply.startswith("+OK "), reply
        uid = reply.split()[1]
        client.wait_event(uid, "CHANNEL_ANSWER")
        hangup = client.wait_event(uid, "CHANNEL_HANGUP", timeout=2)
        assert hangup["Hangup-Cause"] == "NORMAL_CLEARING"
        done = client.wait_event(uid, "CHANNEL_HANGUP_COMPLETE")
        assert done["variable_sip_hangup_disposition"] == "recv_bye"  # the phone's BYE
        assert int(done["variable_billsec"]) == 0


def test_a_phone_that_never_hangs_up_stays_until_the_switch_ends_it() -> None:
    with running_sim(time_scale=1000.0) as addr, SimClient(*addr) as client:
        client.api("sim_endpoint sofia/internal/2202@127.0.0.1 answer 0")
        reply = client.api("originate sofia/internal/2202@127.0.0.1 &park()")
        assert reply.startswith("+OK "), reply
        uid = reply.split()[1].strip()
        client.wait(lambda: False, 0.6)  # ten simulated minutes
        assert client.api(f"uuid_exists {uid}") == "true"
        assert not any(e.name == "CHANNEL_HANGUP" for e in client.leg_events(uid))
        assert client.api(f"uuid_kill {uid}") == "+OK\n"
        done = client.wait_event(uid, "CHANNEL_HANGUP_COMPLETE")
        assert done["variable_sip_hangup_disposition"] == "send_bye"
