"""A finished call's channels are freed when it ends, not left for Python's cycle collector:
the simulator under load paused 40-55 ms in full collections of dead bridged legs, which
showed up as the tail of every latency the product measured through it."""

from __future__ import annotations

import gc
import time
import weakref

from fssim import engine
from fssim.server import EslServer
from fssim.switch import Switch
from tests.sim.simclient import SimClient
from tests.sim.test_channels import ended, parked_call


def test_bridged_legs_are_freed_as_soon_as_both_have_ended() -> None:
    switch = Switch(hostname="sim", time_scale=20.0)
    eng = engine.install(switch)
    switch.start()
    server = EslServer(switch, "127.0.0.1", 0)
    host, port = server.start()
    was_enabled = gc.isenabled()
    try:
        with SimClient(host, port) as client:
            gc.collect()
            gc.disable()               # only reference counting may free them from here
            a = parked_call(client, "4915550001", "4005550101")
            b = parked_call(client, "4915550002", "4005550101")
            legs = [weakref.ref(eng.channels[a]), weakref.ref(eng.channels[b])]
            client.api(f"uuid_answer {a}")
            assert client.api(f"uuid_bridge {a} {b}").startswith("+OK")
            client.wait_event(a, "CHANNEL_BRIDGE")
            client.api(f"uuid_kill {a}")
            ended(client, a)
            ended(client, b)
            deadline = time.monotonic() + 5
            while any(ref() is not None for ref in legs) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [ref() is None for ref in legs] == [True, True]
    finally:
        if was_enabled:
            gc.enable()
        server.stop()
        switch.stop()
