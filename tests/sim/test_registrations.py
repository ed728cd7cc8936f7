"""SIP registrations in the simulator, held to sofia_reg.c / mod_sofia.c and to what the lab
switch sent (tests/data/sofia_registration/, see tests/data/README.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from esl_handlers.events import Event
from esl_handlers.framing import FrameParser
from tests.sim.simclient import SimClient, running_sim

DATA = Path(__file__).resolve().parents[1] / "data" / "sofia_registration"
SUBSCRIBE = "plain CUSTOM sofia::register sofia::unregister sofia::expire"
# 60 s late margin + 30 s sweep in simulated time pass in under a second
TIME_SCALE = 200.0

STANDARD = ["Event-Subclass", "Event-Name", "Core-UUID", "FreeSWITCH-Hostname",
            "FreeSWITCH-Switchname", "FreeSWITCH-IPv4", "FreeSWITCH-IPv6", "Event-Date-Local",
            "Event-Date-GMT", "Event-Date-Timestamp", "Event-Calling-File",
            "Event-Calling-Function", "Event-Calling-Line-Number", "Event-Sequence"]
# sofia_reg.c:sofia_reg_parse_auth's v_event, merged at the end of register / unregister
AUTH = ["sip_number_alias", "sip_auth_username", "sip_auth_realm", "number_alias",
        "user_name", "domain_name"]
# The header sets, in order, written from the source (1.10.12):
FROM_SOURCE = {
    # sofia_reg.c:sofia_reg_handle_register_token, MY_EVENT_REGISTER (no update-reg: the
    # profile has no multiple-registrations)
    "sofia::register": ["profile-name", "from-user", "from-host", "presence-hosts", "contact",
                        "call-id", "rpid", "status", "expires", "to-user", "to-host",
                        "network-ip", "network-port", "username", "realm", "user-agent",
                        *AUTH],
    # sofia_reg.c:sofia_reg_handle_register_token, MY_EVENT_UNREGISTER
    "sofia::unregister": ["profile-name", "username", "from-user", "from-host", "contact",
                          "call-id", "rpid", "realm", "network-ip", "network-port",
                          "user-agent", "expires", *AUTH],
    # sofia_reg.c:sofia_reg_del_callback, MY_EVENT_EXPIRE
    "sofia::expire": ["profile-name", "call-id", "user", "username", "host", "contact",
                      "expires", "user-agent", "realm", "network-ip", "network-port"],
}
CALLING = {"sofia::register": ("sofia_reg.c", "sofia_reg_handle_register_token", "2059"),
           "sofia::unregister": ("sofia_reg.c", "sofia_reg_handle_register_token", "2213"),
           "sofia::expire": ("sofia_reg.c", "sofia_reg_del_callback", "726")}


def lab_events() -> list[Event]:
    parser = FrameParser()
    frames = parser.feed((DATA / "events.raw").read_bytes())
    return [Event.from_frame(f) for f in frames if f.is_event]


@pytest.fixture(scope="module")
def sim_addr() -> Iterator[tuple[str, int]]:
    with running_sim(time_scale=TIME_SCALE) as addr:
        yield addr


@pytest.fixture
def client(sim_addr: tuple[str, int]) -> Iterator[SimClient]:
    with SimClient(*sim_addr, subscribe=SUBSCRIBE) as c:
        yield c


def wait_sub(client: SimClient, subclass: str, user: str, timeout: float = 5.0) -> Event:
    def find() -> Event | None:
        return next((e for e in client.events if e.subclass == subclass
                     and user in (e.get("from-user"), e.get("user"))), None)
    assert client.wait(find, timeout), f"no {subclass} for {user}"
    ev = find()
    assert ev is not None
    return ev


def names(ev: Event) -> list[str]:
    return list(ev.keys())


# ---- the events ------------------------------------------------------------------------
def test_the_lab_switch_sent_what_the_source_builds() -> None:
    """The source-derived lists are what the real switch sent (after the auth headers it adds
    the directory's variables, which the simulator's empty directory has none of)."""
    seen = {}
    for ev in lab_events():
        seen.setdefault(ev.subclass, names(ev))
    assert set(seen) == set(FROM_SOURCE)
    for sub, expected in FROM_SOURCE.items():
        assert seen[sub][:len(STANDARD) + len(expected)] == STANDARD + expected, sub
    assert seen["sofia::expire"] == STANDARD + FROM_SOURCE["sofia::expire"]


def test_register_unregister_and_expire_carry_sofias_headers(client: SimClient) -> None:
    assert client.api("sim_register 2101@default 600").startswith("+OK 2101@default ")
    assert client.api("sim_unregister 2101@default") == "+OK 2101@default unregistered\n"
    assert client.api("sim_register 2102@default 1").startswith("+OK ")
    events = [wait_sub(client, "sofia::register", "2101"),
              wait_sub(client, "sofia::unregister", "2101"),
              wait_sub(client, "sofia::expire", "2102")]
    for ev in events:
        assert ev.subclass is not None
        assert names(ev) == STANDARD + FROM_SOURCE[ev.subclass], ev.subclass
        assert (ev.get("Event-Calling-File"), ev.get("Event-Calling-Function"),
                ev.get("Event-Calling-Line-Number")) == CALLING[ev.subclass]
    reg, unreg, expire = events
    assert reg.get("expires") == "600" and unreg.get("expires") == "0"
    # the expire event's "expires" is the epoch the row expired at, like the lab's
    assert 0 < int(expire["expires"]) * 1_000_000 <= int(expire["Event-Date-Timestamp"])
    assert reg["call-id"] == unreg["call-id"]
    assert reg["contact"] == '"" <sip:2101@127.0.0.1:5070>'
    assert reg["status"] == "Registered(UDP)" and reg["profile-name"] == "internal"


def test_values_have_the_lab_shapes(client: SimClient) -> None:
    """Same registration as the lab's 1001 (contact 127.0.0.1:25190, domain 127.0.0.1): every
    value equal except the phone's own choices (Call-ID, User-Agent) and the directory."""
    client.api("sim_register 1001@127.0.0.1 120 sip:1001@127.0.0.1:25190")
    client.api("sim_unregister 1001@127.0.0.1")
    lab = {e.subclass: e for e in reversed(lab_events()) if e.get("from-user") == "1001"}
    for sub in ("sofia::register", "sofia::unregister"):
        ours = wait_sub(client, sub, "1001")
        for name in FROM_SOURCE[sub]:
            if name not in ("call-id", "user-agent"):
                assert ours[name] == lab[sub][name], (sub, name)


def test_plain_encoding_matches_the_captured_custom_events(sim_addr: tuple[str, int]) -> None:
    lab = (DATA / "events.raw").read_bytes()
    with SimClient(*sim_addr, subscribe=SUBSCRIBE) as c:
        c.api("sim_register 1001@127.0.0.1 120 sip:1001@127.0.0.1:25190")
        c.wait(lambda: b"sofia%3A%3Aregister" in c.received, 5)
        raw = bytes(c.received)
    for line in (b"Content-Type: text/event-plain\n\nEvent-Subclass: sofia%3A%3Aregister\n"
                 b"Event-Name: CUSTOM\n",
                 b"\ncontact: %22%22%20%3Csip%3A1001%40127.0.0.1%3A25190%3E\n",
                 b"\nstatus: Registered(UDP)\n", b"\npresence-hosts: 127.0.0.1,127.0.0.1\n"):
        assert line in lab and line in raw, line


def test_expiry_waits_for_the_late_margin_and_a_refresh_prevents_it(client: SimClient) -> None:
    """Expires 1 s: gone between 61 and 91 simulated seconds, not before; refreshed every
    20 s, it stays."""
    client.api("sim_register 2103@default 1")
    client.api("sim_register 2104@default 1")
    t0 = client.events[-1].timestamp_us or 0
    for _ in range(8):  # 160 simulated seconds of refreshes
        client.api("sim_register 2104@default 1")
        client.wait(lambda: False, 20 / TIME_SCALE)
    expired = wait_sub(client, "sofia::expire", "2103")
    elapsed_sim = ((expired.timestamp_us or 0) - t0) / 1e6 * TIME_SCALE
    assert 55 <= elapsed_sim <= 100, elapsed_sim
    assert not any(e.subclass == "sofia::expire" and e.get("user") == "2104"
                   for e in client.events)
    assert client.api("sofia_contact 2104@default") == "sofia/internal/sip:2104@127.0.0.1:5070"
    assert client.api("sofia_contact 2103@default") == "error/user_not_registered"


def test_subscription_by_subclass(sim_addr: tuple[str, int]) -> None:
    with SimClient(*sim_addr, subscribe="plain CUSTOM sofia::unregister") as only_unreg, \
            SimClient(*sim_addr, subscribe="plain HEARTBEAT") as no_custom:
        only_unreg.api("sim_register 2105@default 60")
        only_unreg.api("sim_unregister 2105@default")
        wait_sub(only_unreg, "sofia::unregister", "2105")
        assert not any(e.subclass == "sofia::register" for e in only_unreg.events)
        assert not any(e.name == "CUSTOM" for e in no_custom.events)


# ---- sofia_contact and originate, replayed from the lab ---------------------------------
def test_replies_recorded_on_the_lab_switch(client: SimClient) -> None:
    rows = json.loads((DATA / "replies.json").read_text())
    client.api("sim_register 1001@127.0.0.1 120 sip:1001@127.0.0.1:25190")
    registered = True
    for row in rows:
        if registered and "unregistered" in row["state"]:
            client.api("sim_unregister 1001@127.0.0.1")
            registered = False
        assert client.api(row["api"]) == row["reply"], row


def test_registered_user_follows_its_script_and_rings_its_contact(client: SimClient) -> None:
    client.api("sim_register 2106@default 600 sip:2106@10.1.1.6:5062")
    assert client.api("originate user/2106@default &park()") == \
        "-ERR NORMAL_TEMPORARY_FAILURE\n"   # registered, but nothing scripted answers
    client.api("sim_endpoint user/2106@default busy")
    assert client.api("originate user/2106@default &park()") == "-ERR USER_BUSY\n"
    client.api("sim_endpoint user/2106@default answer")
    reply = client.api("originate user/2106@default &park()")
    assert reply.startswith("+OK "), reply
    uid = reply.split()[1].strip()
    assert client.api(f"uuid_getvar {uid} channel_name") == "sofia/internal/2106@10.1.1.6:5062"
    client.api(f"uuid_kill {uid}")
    client.api("sim_unregister 2106@default")
    assert client.api("originate user/2106@default &park()") == "-ERR USER_NOT_REGISTERED\n"
    assert client.api("originate sofia/internal/2106%default &park()") == \
        "-ERR USER_NOT_REGISTERED\n"
    # a user never registered (not in the simulated directory) is absent, as before
    assert client.api("originate user/2199@default &park()") == "-ERR SUBSCRIBER_ABSENT\n"


def test_an_unregistered_user_makes_no_channel(sim_addr: tuple[str, int]) -> None:
    """USER_NOT_REGISTERED comes before any channel exists (the reply follows every event
    the originate fired on this connection)."""
    with SimClient(*sim_addr, subscribe="plain CHANNEL_OUTGOING") as c:
        c.api("sim_register 2107@default 600")
        c.api("sim_endpoint user/2107@default busy")
        assert c.api("originate user/2107@default &park()") == "-ERR USER_BUSY\n"
        assert [e.name for e in c.events] == ["CHANNEL_OUTGOING"]
        c.api("sim_unregister 2107@default")
        assert c.api("originate user/2107@default &park()") == "-ERR USER_NOT_REGISTERED\n"
        assert [e.name for e in c.events] == ["CHANNEL_OUTGOING"]


@pytest.mark.parametrize(("command", "reply"), [
    ("sim_register", "-USAGE: sim_register <user>@<domain> [expires_s] [contact]\n"),
    ("sim_register 2108", "-USAGE: sim_register <user>@<domain> [expires_s] [contact]\n"),
    ("sim_register 2108@default x",
     "-USAGE: sim_register <user>@<domain> [expires_s] [contact]\n"),
    ("sim_register 2108@default 0", "-ERR expires 0 is an unregister: use sim_unregister\n"),
    ("sim_register 2108@default 60 sip:nohost",
     "-ERR bad contact sip:nohost (want [sip:]user@host[:port][;params])\n"),
    ("sim_unregister", "-USAGE: sim_unregister <user>@<domain>\n"),
])
def test_sim_command_usage(client: SimClient, command: str, reply: str) -> None:
    assert client.api(command) == reply
