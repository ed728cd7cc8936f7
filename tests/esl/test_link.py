"""NodeLink: reconnect, re-subscribe, restart detection, watchdog, bad frames — against a
scripted raw ESL peer, and (when the simulator is importable) against ``cc-core sim``."""

from __future__ import annotations

import math
import random
import time
from typing import Any

import gevent
import gevent.event
import pytest
from prometheus_client import CollectorRegistry

from cc_core.config import EslConfig, NodeConfig
from cc_core.errors import NotConnected
from esl_handlers import commands
from esl_handlers.dispatch import Dispatcher
from esl_handlers.events import Event
from esl_handlers.link import COMMAND_EVENTS, NodeLink, backoff_delay
from metrics.esl import EslMetrics
from tests.esl.peer import ScriptedPeer, gwait, reply

PW = "link-secret"


class Recorder:
    def __init__(self) -> None:
        self.ups: list[bool] = []
        self.downs = 0
        self.channels: list[list[dict[str, Any]]] = []

    def on_up(self, link: NodeLink, restarted: bool) -> None:
        self.channels.append(link.show_channels())   # what an owner does: reconcile
        self.ups.append(restarted)

    def on_down(self, link: NodeLink) -> None:
        self.downs += 1


def _esl(**kw: Any) -> EslConfig:
    base: dict[str, Any] = dict(command_timeout_s=1.0, connect_timeout_s=1.0,
                                reconnect_min_s=0.02, reconnect_max_s=0.1,
                                heartbeat_interval_s=20.0, heartbeat_misses=2.5,
                                events=["CHANNEL_PARK", "CHANNEL_HANGUP", "BACKGROUND_JOB",
                                        "HEARTBEAT"],
                                filters=[("Caller-Destination-Number", "4001234567")])
    base.update(kw)
    return EslConfig(**base)


def _value(m: EslMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return m.registry.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def metrics() -> EslMetrics:
    return EslMetrics(CollectorRegistry())


@pytest.fixture
def peer():
    with ScriptedPeer(password=PW) as p:
        yield p


def _link(peer: ScriptedPeer, rec: Recorder, metrics: EslMetrics, dispatcher=None,
          consume: bool = True, **kw: Any) -> NodeLink:
    link = NodeLink(NodeConfig(name="fs1", port=peer.port, password=PW), _esl(**kw),
                    consume_events=consume, dispatcher=dispatcher, metrics=metrics,
                    on_up=rec.on_up, on_down=rec.on_down)
    link.start()
    return link


def test_backoff_grows_with_jitter_inside_bounds():
    rng = random.Random(7)
    for attempt in range(12):
        d = backoff_delay(attempt, 0.2, 10.0, rng)
        assert 0.2 <= d <= min(10.0, 0.2 * 2 ** attempt)
    assert {round(backoff_delay(3, 0.2, 10.0, rng), 6) for _ in range(20)}.__len__() > 1


def test_config_and_builders_refuse_all():
    with pytest.raises(ValueError, match="not ALL"):
        EslConfig(events=["CHANNEL_PARK", "ALL"])
    with pytest.raises(ValueError, match="not ALL"):
        commands.event_plain(["all"])


def test_link_subscribes_filters_and_routes_events(peer, metrics):
    rec = Recorder()
    d = Dispatcher(queue_size=100, pool_size=4, metrics=metrics)
    got: list[Event] = []
    d.on("CHANNEL_PARK", lambda e, link: got.append(e))
    link = _link(peer, rec, metrics, d)
    try:
        gwait(lambda: rec.ups == [False], message="link up")
        assert link.is_up and link.core_uuid == peer.core_uuid
        assert rec.channels == [[]]
        cmds = peer.commands
        assert "event plain " + " ".join(COMMAND_EVENTS) in cmds
        assert "event plain CHANNEL_PARK CHANNEL_HANGUP BACKGROUND_JOB HEARTBEAT" in cmds
        assert "filter Caller-Destination-Number 4001234567" in cmds
        # With a filter set, the pulse and the job results must still pass it.
        assert "filter Event-Name HEARTBEAT" in cmds and "filter Event-Name BACKGROUND_JOB" in cmds
        assert not any(c.endswith(" ALL") for c in cmds)
        # MES applies the filter: only the call to the filtered number is delivered.
        peer.broadcast_event("CHANNEL_PARK", {"Unique-ID": "other",
                                              "Caller-Destination-Number": "4009999999"})
        peer.broadcast_event("CHANNEL_PARK", {"Unique-ID": "call-1",
                                              "Caller-Destination-Number": "4001234567"})
        gwait(lambda: [e.unique_id for e in got] == ["call-1"])
        assert link.api("status").startswith("UP")
        assert link.bgapi("status").get(2).startswith("UP")
    finally:
        link.stop()
        d.stop(1)
    assert not link.is_up


def test_restart_with_new_core_uuid_is_reported_and_everything_is_resent(peer, metrics):
    rec = Recorder()
    link = _link(peer, rec, metrics, Dispatcher(queue_size=100, pool_size=2))
    try:
        gwait(lambda: rec.ups == [False])
        old_core = link.core_uuid
        first_conns = len(peer.conns)
        peer.restart()                       # dies mid-stream, back with a new Core-UUID
        gwait(lambda: len(rec.ups) == 2, message="link up again")
        assert rec.ups == [False, True] and rec.downs == 1
        assert link.core_uuid == peer.core_uuid != old_core
        after = [c for conn in peer.conns[first_conns:] for c in conn.commands]
        assert f"auth {PW}" in after
        assert "event plain " + " ".join(COMMAND_EVENTS) in after
        assert "event plain CHANNEL_PARK CHANNEL_HANGUP BACKGROUND_JOB HEARTBEAT" in after
        assert "filter Caller-Destination-Number 4001234567" in after
        assert _value(metrics, "cccore_esl_node_restarts_total", {"node": "fs1"}) == 1
        assert _value(metrics, "cccore_esl_reconnects_total", {"node": "fs1"}) >= 2
        assert _value(metrics, "cccore_esl_node_up", {"node": "fs1"}) == 1
        # Same switch back (same Core-UUID): a reconnect, not a restart.
        peer.restart(new_core=False)
        gwait(lambda: len(rec.ups) == 3)
        assert rec.ups[2] is False
        assert link.api("status").startswith("UP")
    finally:
        link.stop()


def test_commands_wait_for_the_link_then_fail_with_not_connected(peer, metrics):
    rec = Recorder()
    link = _link(peer, rec, metrics, consume=False, command_timeout_s=0.3)
    try:
        gwait(lambda: rec.ups == [False])
        peer.stop()
        gwait(lambda: not link.is_up)
        t0 = time.monotonic()
        with pytest.raises(NotConnected):
            link.api("status")
        assert time.monotonic() - t0 < 1.5
        pending = gevent.spawn(link.api, "status", 2.0)
        peer.start()
        pending.join(3)
        assert pending.value and pending.value.startswith("UP")
    finally:
        link.stop()


def test_a_command_sent_while_the_connection_is_going_waits_for_the_next_one(peer, metrics):
    # The switch has said it is closing this socket (disconnect notice) but the socket is not
    # closed yet: a handler's api call must ride over to the new connection, not fail.
    rec = Recorder()
    link = _link(peer, rec, metrics, consume=False, command_timeout_s=2.0)
    try:
        gwait(lambda: rec.ups == [False])
        old = peer.latest()
        body = b"killed listener because of lost events\n"
        old.send(b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(body)
                 + body)
        going = link._conns["commands"]
        gwait(lambda: not going.connected, message="the notice seen")
        waiters = going.closed.linkcount()
        pending = gevent.spawn(link.api, "status")
        # the call is waiting on the going connection (not yet sent, not failed)
        gwait(lambda: going.closed.linkcount() > waiters or pending.ready(),
              message="the api call to wait on the going connection")
        assert not pending.ready(), pending.exception
        old.close()
        pending.join(3)
        assert pending.successful(), pending.exception
        assert pending.value.startswith("UP")
        assert "api status" not in old.commands
    finally:
        link.stop()


def test_heartbeat_watchdog_declares_a_silent_node_dead(metrics):
    with ScriptedPeer(password=PW, heartbeat_interval=0.05) as peer:
        rec = Recorder()
        interval, misses = 0.1, 3
        link = _link(peer, rec, metrics, consume=True, dispatcher=None,
                     heartbeat_interval_s=interval, heartbeat_misses=misses,
                     command_timeout_s=0.3)
        try:
            gwait(lambda: rec.ups == [False])
            # two whole watchdog windows of heartbeats (counted, not slept): they keep it up
            start = peer.heartbeats_sent
            needed = math.ceil(2 * interval * misses / peer.heartbeat_interval)
            gwait(lambda: peer.heartbeats_sent - start >= needed, timeout=10,
                  message=f"{needed} heartbeats")
            assert link.is_up and rec.downs == 0
            peer.silent = True    # the switch hangs: socket open, nothing sent
            gwait(lambda: rec.downs == 1, timeout=3, message="node declared dead")
            assert _value(metrics, "cccore_esl_heartbeat_missed_total", {"node": "fs1"}) >= 1
            peer.silent = False
            gwait(lambda: len(rec.ups) == 2, timeout=3, message="link back")
            assert link.is_up
        finally:
            link.stop()


def test_with_a_filter_set_heartbeats_still_reach_the_event_stream(metrics):
    # MES delivers an event only if some filter matches it once any filter is set: the
    # configured Caller-Destination-Number filter alone would silence HEARTBEAT.
    with ScriptedPeer(password=PW, heartbeat_interval=0.02) as peer:
        rec = Recorder()
        d = Dispatcher(queue_size=100, pool_size=2)
        beats: list[str] = []
        d.on("HEARTBEAT", lambda e, link: beats.append(e.name or ""))
        link = _link(peer, rec, metrics, d)
        try:
            gwait(lambda: len(beats) >= 3, message="HEARTBEATs through the filtered stream")
            stream = [c for c in peer.live() if "CHANNEL_PARK" in c.subscribed][-1]
            assert ("Event-Name", "HEARTBEAT") in stream.filters
        finally:
            link.stop()
            d.stop(1)


def test_the_apps_extra_events_are_subscribed_and_pass_the_filters(peer, metrics):
    # What the app adds (sofia's registration events for the ACD) joins the configured list,
    # CUSTOM subclasses last, and gets through the operator's Caller-Destination-Number filter.
    d = Dispatcher(queue_size=100, pool_size=2, metrics=metrics)
    got: list[str] = []
    d.on_custom("sofia::register", lambda e, link: got.append(e.get("from-user") or ""))
    rec = Recorder()
    link = NodeLink(NodeConfig(name="fs1", port=peer.port, password=PW), _esl(),
                    consume_events=True, dispatcher=d, metrics=metrics, on_up=rec.on_up,
                    on_down=rec.on_down,
                    extra_events=["CUSTOM sofia::register sofia::expire"])
    link.start()
    try:
        gwait(lambda: rec.ups == [False], message="link up")
        assert ("event plain CHANNEL_PARK CHANNEL_HANGUP BACKGROUND_JOB HEARTBEAT "
                "CUSTOM sofia::register sofia::expire") in peer.commands
        peer.broadcast_event("CUSTOM", {"Event-Subclass": "sofia::register",
                                        "from-user": "1001", "from-host": "default"})
        gwait(lambda: got == ["1001"], message="the registration event through the filter")
    finally:
        link.stop()
        d.stop(1)


def test_a_switch_with_a_longer_heartbeat_period_is_probed_not_reset(peer, metrics):
    # The peer sends no HEARTBEAT at all within our window (a switch whose
    # event-heartbeat-interval is longer than heartbeat_interval_s x misses, or an idle node)
    # but answers commands: the link must stay up on its first connections.
    rec = Recorder()
    link = _link(peer, rec, metrics, Dispatcher(queue_size=100, pool_size=2),
                 heartbeat_interval_s=0.05, heartbeat_misses=2, command_timeout_s=0.5)
    try:
        gwait(lambda: rec.ups == [False])
        first = list(peer.live())
        gwait(lambda: all(c.commands.count("api status") >= 3 for c in first), timeout=5,
              message="several watchdog windows, each ended by a probe")
        assert rec.downs == 0 and all(not c.closed for c in first)
        assert _value(metrics, "cccore_esl_heartbeat_missed_total", {"node": "fs1"}) == 0
    finally:
        link.stop()


def test_a_reader_held_by_back_pressure_is_not_declared_dead(peer, metrics):
    # Handlers stall and the dispatch queue is full: the events reader stops reading on
    # purpose. FreeSWITCH is not silent, it queues our events; resetting the socket would
    # throw that backlog away. Each watchdog window is marked by a probe on the commands
    # connection (this peer sends no HEARTBEAT).
    rec = Recorder()
    release = gevent.event.Event()
    handled: list[str] = []

    def stuck(event: Event, link: NodeLink) -> None:
        release.wait()
        handled.append(event.unique_id or "")

    d = Dispatcher(queue_size=1, pool_size=1, metrics=metrics)
    d.on("CHANNEL_PARK", stuck)
    link = _link(peer, rec, metrics, d, heartbeat_interval_s=0.05, heartbeat_misses=2,
                 command_timeout_s=0.3)
    try:
        gwait(lambda: rec.ups == [False])
        stream = [c for c in peer.live() if "CHANNEL_PARK" in c.subscribed][-1]
        commands_conn = [c for c in peer.live() if c is not stream][-1]
        for i in range(3):   # one in the handler (the whole queue), one holding the reader
            peer.broadcast_event("CHANNEL_PARK", {"Unique-ID": f"c{i}",
                                                  "Caller-Destination-Number": "4001234567"})
        gwait(lambda: _value(metrics, "cccore_esl_events_total",
                             {"node": "fs1", "event": "CHANNEL_PARK"}) == 2)
        probes = commands_conn.commands.count("api status")
        gwait(lambda: commands_conn.commands.count("api status") >= probes + 4, timeout=5,
              message="several watchdog windows")
        assert not stream.closed and rec.downs == 0
        assert "api status" not in stream.commands
        release.set()
        gwait(lambda: handled == ["c0", "c1", "c2"], message="the backlog handled")
    finally:
        release.set()
        link.stop()
        d.stop(1)


BAD_FRAMES = [
    pytest.param(b"Content-Type: api/response\nContent-Length: 3\n+OK\n\n", id="missing-blank-line"),
    pytest.param(b"Content-Type: api/response\nContent-Length: -1\n\n", id="negative-length"),
    pytest.param(b"Content-Type: api/response\nContent-Length: x1\n\n", id="non-numeric-length"),
    pytest.param(b"Content-Length: 17179869184\nContent-Type: text/event-plain\n\n", id="huge-length"),
    pytest.param(b"\xde\xad\xbe\xef\n\x00\x01garbage\n\n", id="garbage"),
    pytest.param(b"Content-Length: 500\nContent-Type: text/event-plain\n\nEvent-Name: CH", id="truncated"),
    pytest.param(reply("+OK nobody asked"), id="unsolicited-reply"),
]


@pytest.mark.parametrize("bad", BAD_FRAMES)
def test_bad_frames_on_the_event_stream_leave_the_link_working(peer, metrics, bad):
    rec = Recorder()
    d = Dispatcher(queue_size=100, pool_size=2)
    got: list[str] = []
    d.on("CHANNEL_PARK", lambda e, link: got.append(e.unique_id or ""))
    link = _link(peer, rec, metrics, d)
    try:
        gwait(lambda: rec.ups == [False])
        stream = [c for c in peer.live() if "CHANNEL_PARK" in c.subscribed][-1]
        stream.send(bad)
        if bad.startswith(b"Content-Length: 500"):
            stream.close()          # the peer dies in the middle of the body
        unsolicited = bad.startswith(b"Content-Type: command/reply")
        if not unsolicited:
            gwait(lambda: len(rec.ups) == 2, message="reconnected after the bad frame")
            assert rec.ups == [False, False] and rec.downs == 1
            assert rec.channels[-1] == []       # the owner reconciled
        else:
            gwait(lambda: _value(metrics, "cccore_esl_unsolicited_replies_total",
                                 {"node": "fs1"}) == 1)
            assert rec.downs == 0
        assert link.api("status").startswith("UP")
        peer.broadcast_event("CHANNEL_PARK", {"Unique-ID": "after",
                                              "Caller-Destination-Number": "4001234567"})
        gwait(lambda: "after" in got, message="events flow again")
        framing = _value(metrics, "cccore_esl_framing_errors_total", {"node": "fs1"})
        assert framing == (0 if unsolicited or bad.startswith(b"Content-Length: 500") else 1)
    finally:
        link.stop()
        d.stop(1)


def test_set_consume_opens_and_closes_the_event_stream(peer, metrics):
    rec = Recorder()
    link = _link(peer, rec, metrics, Dispatcher(queue_size=100, pool_size=2), consume=False)
    try:
        gwait(lambda: rec.ups == [False])
        assert not [c for c in peer.live() if "CHANNEL_PARK" in c.subscribed]
        link.set_consume(True)
        gwait(lambda: len(rec.ups) == 2, message="up with the event stream")
        assert rec.downs == 0, "starting to consume loses nothing: no on_down"
        assert [c for c in peer.live() if "CHANNEL_PARK" in c.subscribed]
        link.set_consume(False)
        gwait(lambda: not [c for c in peer.live() if "CHANNEL_PARK" in c.subscribed])
        assert link.is_up
    finally:
        link.stop()


# --- against the simulator (cc-core sim), a separate process killed and restarted -------------
def _sim_available() -> bool:
    try:
        import fssim.cli  # noqa: F401
    except ImportError:
        return False
    return True


needs_sim = pytest.mark.skipif(not _sim_available(), reason="fssim (the simulator) not importable")


class SimProcess:
    """``python -m fssim`` on 127.0.0.1; restartable on the same port (new Core-UUID)."""

    def __init__(self, password: str, port: int = 0) -> None:
        self.password = password
        self.port = port
        self.proc: Any = None

    def start(self) -> SimProcess:
        import sys

        from gevent import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fssim", "--listen", f"127.0.0.1:{self.port}",
             "--password", self.password, "--heartbeat-interval", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        with gevent.Timeout(15, AssertionError("simulator did not print its address")):
            line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def restart(self) -> None:
        self.kill()
        self.start()


@pytest.fixture
def sim():
    s = SimProcess(PW).start()
    try:
        yield s
    finally:
        s.kill()


def _sim_link(sim: SimProcess, rec: Recorder, metrics: EslMetrics, d: Dispatcher) -> NodeLink:
    esl = EslConfig(command_timeout_s=3.0, connect_timeout_s=3.0, reconnect_min_s=0.05,
                    reconnect_max_s=0.3, heartbeat_interval_s=1.0, heartbeat_misses=3)
    link = NodeLink(NodeConfig(name="sim1", port=sim.port, password=PW), esl,
                    consume_events=True, dispatcher=d, metrics=metrics,
                    on_up=rec.on_up, on_down=rec.on_down)
    link.start()
    return link


@needs_sim
def test_sim_connect_subscribe_api_bgapi_and_events(sim, metrics):
    rec = Recorder()
    d = Dispatcher(queue_size=1000, pool_size=8, metrics=metrics)
    parks: list[Event] = []
    d.on("CHANNEL_PARK", lambda e, link: parks.append(e))
    link = _sim_link(sim, rec, metrics, d)
    try:
        gwait(lambda: rec.ups == [False], timeout=10, message="link up on the simulator")
        assert rec.channels == [[]]
        assert link.api("status").startswith("UP ")
        assert link.api("foobar") == "-ERR foobar Command not found!\n"
        job = link.bgapi("status")
        assert job.get(5).startswith("UP ")
        assert job.event is not None and job.event.core_uuid == link.core_uuid
        reply = link.api("sim_inbound 13800138000 4001234567 caller_id_name=Hostile%0AUnique-ID:x")
        assert reply.startswith("+OK "), reply
        uuid = reply[4:].strip()
        gwait(lambda: any(e.unique_id == uuid for e in parks), timeout=5, message="CHANNEL_PARK")
        # show channels reads the switch's core db, written from a queue after the events:
        # on a real FreeSWITCH the row can lag the PARK, so wait for it.
        gwait(lambda: [ch.get("uuid") for ch in link.show_channels()] == [uuid], timeout=5,
              message="the channel listed")
        assert link.api(commands.uuid_answer(uuid)).startswith("+OK")
        assert link.api(commands.uuid_kill(uuid)).startswith("+OK")
        gwait(lambda: link.show_channels() == [], timeout=5, message="channel gone")
        assert _value(metrics, "cccore_esl_events_total",
                      {"node": "sim1", "event": "CHANNEL_PARK"}) >= 1
    finally:
        link.stop()
        d.stop(1)


@needs_sim
def test_sim_killed_mid_stream_and_restarted_is_seen_as_a_restart(sim, metrics):
    rec = Recorder()
    d = Dispatcher(queue_size=1000, pool_size=8, metrics=metrics)
    seen: list[str] = []
    d.on("*", lambda e, link: seen.append(e.name or ""))
    link = _sim_link(sim, rec, metrics, d)
    try:
        gwait(lambda: rec.ups == [False], timeout=10)
        old_core = link.core_uuid
        for i in range(5):     # calls in flight: the event stream is busy when the switch dies
            assert link.api(f"sim_inbound 1380013800{i} 400123456{i}").startswith("+OK")
        gwait(lambda: seen.count("CHANNEL_PARK") >= 5, timeout=5)
        sim.kill()
        gwait(lambda: rec.downs >= 1, timeout=5, message="link down after the kill")
        with pytest.raises(NotConnected):
            link.api("status", timeout=0.2)
        sim.restart()
        gwait(lambda: len(rec.ups) == 2, timeout=15, message="link up after the restart")
        assert rec.ups == [False, True]
        assert link.core_uuid and link.core_uuid != old_core
        assert rec.channels[-1] == []             # the restarted switch has no calls left
        assert link.api("status").startswith("UP ")
        assert link.bgapi("status").get(5).startswith("UP ")
        assert _value(metrics, "cccore_esl_node_restarts_total", {"node": "sim1"}) == 1
    finally:
        link.stop()
        d.stop(1)


def test_a_node_that_never_answers_reads_down_not_absent(metrics):
    # A switch down since the worker started must show as 0 (an alert on it fires); a
    # missing series would look the same as a node nobody configured.
    with ScriptedPeer(password=PW) as gone:
        port = gone.port            # closed when the block ends: nothing listens there
    rec = Recorder()
    link = NodeLink(NodeConfig(name="fs9", port=port, password=PW), _esl(), consume_events=True,
                    dispatcher=None, metrics=metrics, on_up=rec.on_up, on_down=rec.on_down)
    link.start()
    try:
        gwait(lambda: link.metrics is not None and metrics.registry.get_sample_value(
            "cccore_esl_node_up", {"node": "fs9"}) == 0, message="node_up{fs9} reads 0")
        assert not link.is_up and rec.ups == []
    finally:
        link.stop()
