"""How the simulator's events are read and what they cost it.

* ``SimEvent.get`` reads a header as ``switch_event_get_header`` does: by name, whatever its
  case, the first of repeated headers, the standard block included.
* A channel event builds its ~170 headers only when read; what the core database reads of it
  beforehand is what the built event says.
* A finished call's channels are freed when it ends, not left for Python's cycle collector:
  under load the simulator paused 40-55 ms in full collections of dead bridged legs, which
  showed up as the tail of every latency the product measured through it.
"""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fssim import engine
from fssim.engine import Engine
from fssim.server import EslServer
from fssim.switch import Switch
from tests.sim.simclient import SimClient
from tests.sim.test_channels import ended, parked_call


@contextmanager
def _switch(hook: Callable[[Any], None] | None = None
            ) -> Iterator[tuple[Engine, SimClient]]:
    """An in-process switch (``hook`` bound after the core database's) and a client of it."""
    switch = Switch(hostname="sim", time_scale=20.0)
    eng = engine.install(switch)
    if hook is not None:
        switch.bind(hook)
    switch.start()
    server = EslServer(switch, "127.0.0.1", 0)
    host, port = server.start()
    try:
        with SimClient(host, port) as client:
            yield eng, client
    finally:
        server.stop()
        switch.stop()


def _bridged_call(client: SimClient, parked: Callable[[str, str], None] = lambda a, b: None
                  ) -> None:
    """Two inbound legs parked (``parked(a, b)``), answered, bridged, then hung up."""
    a = parked_call(client, "4915550001", "4005550101")
    b = parked_call(client, "4915550002", "4005550101")
    parked(a, b)
    client.api(f"uuid_answer {a}")
    assert client.api(f"uuid_bridge {a} {b}").startswith("+OK")
    client.wait_event(a, "CHANNEL_BRIDGE")
    client.api(f"uuid_kill {a}")
    ended(client, a)
    ended(client, b)


def test_a_header_is_found_by_any_spelling_and_the_first_repeat_wins() -> None:
    switch = Switch(hostname="sim")
    ev = switch.new_event("CHANNEL_PARK")
    ev.add("Unique-ID", "first").add("Caller-Caller-ID-Number", "13311112222")
    ev.add("Unique-ID", "second").add("variable_cc_member", "m1")

    assert ev.get("Unique-ID") == "first"
    assert ev.get("unique-id") == "first" and ev.get("UNIQUE-ID") == "first"
    assert ev.get("caller-caller-id-number") == "13311112222"
    assert ev.get("Event-Name") == "CHANNEL_PARK"          # the standard block
    assert ev.get("FreeSWITCH-Hostname") == "sim"
    assert ev.get("Other-Leg-Unique-ID") is None
    assert ev.get("other-leg-unique-id", "-") == "-"
    assert ev.get("VARIABLE_CC_MEMBER") == "m1"


# What the core database's hook reads of every channel event (fssim.coredb), and more.
LEADING = ("Unique-ID", "Channel-State", "Channel-Call-State", "Channel-Call-UUID",
           "Application", "Application-Data", "Application-UUID", "Answer-State",
           "Original-Channel-Call-State", "Bridge-A-Unique-ID", "Bridge-B-Unique-ID")


def test_a_channel_event_read_before_its_profile_is_built_says_what_the_built_one_says() -> None:
    seen: list[tuple[str, bool, dict[str, str], dict[str, str]]] = []

    def check(ev: Any) -> None:
        lazy = not ev.built         # after the core database's hook, which runs first
        # What the event would answer unbuilt (its own account of it), then by the headers.
        early = dict(ev._known) if lazy else {}
        first: dict[str, str] = {}
        for name, value in ev.all_headers():
            first.setdefault(name, value)
        seen.append((ev.name, lazy, early, first))

    with _switch(check) as (_, client):
        _bridged_call(client)

    names = {name for name, *_ in seen}
    assert {"CHANNEL_CREATE", "CHANNEL_STATE", "CHANNEL_CALLSTATE", "CHANNEL_EXECUTE",
            "CHANNEL_PARK", "CHANNEL_ANSWER", "CHANNEL_BRIDGE",
            "CHANNEL_HANGUP_COMPLETE"} <= names, names
    for name, _, early, first in seen:
        assert early == {n: first.get(n) for n in early}, name
        assert set(LEADING) & set(first) <= set(early) or not early, name
    # The core database's reads left most events unbuilt for a listener-less switch.
    unbuilt = [name for name, lazy, *_ in seen if lazy]
    assert len(unbuilt) > len(seen) // 2, (len(unbuilt), len(seen))


def test_bridged_legs_are_freed_as_soon_as_both_have_ended() -> None:
    legs: list[weakref.ref[Any]] = []
    was_enabled = gc.isenabled()
    try:
        with _switch() as (eng, client):
            gc.collect()
            gc.disable()               # only reference counting may free them from here
            _bridged_call(client, lambda a, b: legs.extend(
                weakref.ref(eng.channels[u]) for u in (a, b)))
            deadline = time.monotonic() + 5
            while any(ref() is not None for ref in legs) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [ref() is None for ref in legs] == [True, True]
    finally:
        if was_enabled:
            gc.enable()
