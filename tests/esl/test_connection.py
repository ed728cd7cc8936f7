"""EslConnection against a scripted raw ESL peer on a real loopback socket."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import gevent
import pytest
from gevent.server import StreamServer
from prometheus_client import CollectorRegistry

from cc_core.config import EslConfig, NodeConfig
from cc_core.errors import AuthFailed, CommandTimeout, EslError, NotConnected
from esl_handlers.connection import EslConnection
from esl_handlers.events import Event
from metrics.esl import EslMetrics
from tests.esl.peer import ScriptedPeer, api_response, event_frame, gwait, plain_event, reply

SECRET = "S3cr3t-Pw_do-not-log"


def _esl(**kw: Any) -> EslConfig:
    base: dict[str, Any] = dict(command_timeout_s=1.0, connect_timeout_s=1.0)
    base.update(kw)
    return EslConfig(**base)


def _node(peer: ScriptedPeer, password: str = SECRET) -> NodeConfig:
    return NodeConfig(name="fs1", host="127.0.0.1", port=peer.port, password=password)


@pytest.fixture
def peer():
    with ScriptedPeer(password=SECRET) as p:
        yield p


@pytest.fixture
def metrics() -> EslMetrics:
    return EslMetrics(CollectorRegistry())


def _value(m: EslMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return m.registry.get_sample_value(name, labels or {}) or 0.0


def _connect(peer: ScriptedPeer, events: list | None = None, metrics=None, **kw) -> EslConnection:
    conn = EslConnection(_node(peer), _esl(**kw), on_event=(events.append if events is not None
                                                           else None), metrics=metrics)
    conn.connect()
    return conn


def test_connect_authenticates_and_api_returns_the_body(peer):
    conn = _connect(peer)
    try:
        assert conn.api("status").startswith("UP 0 years")
        assert conn.api("foobar") == "-ERR foobar Command not found!\n"
        assert peer.commands[:1] == [f"auth {SECRET}"]
    finally:
        conn.close()
    assert "exit" in peer.commands


def test_wrong_password_is_auth_failed(peer):
    conn = EslConnection(_node(peer, password="wrong"), _esl())
    with pytest.raises(AuthFailed, match="refused the ESL password"):
        conn.connect()
    assert not conn.connected


def test_refused_port_is_not_connected(peer):
    port = peer.port
    peer.stop()
    conn = EslConnection(NodeConfig(name="fs1", port=port, password=SECRET), _esl())
    with pytest.raises(NotConnected):
        conn.connect()


def test_handshake_without_auth_request_times_out():
    server = StreamServer(("127.0.0.1", 0), lambda sock, addr: gevent.sleep(5))
    server.start()
    try:
        conn = EslConnection(NodeConfig(name="mute", port=server.server_port),
                             _esl(connect_timeout_s=0.3))
        t0 = time.monotonic()
        with pytest.raises(NotConnected, match="handshake"):
            conn.connect()
        assert time.monotonic() - t0 < 2
    finally:
        server.close()


def test_command_timeout_fires_and_a_late_reply_is_paired_and_dropped(peer, metrics):
    def slow(cmd, conn):
        gevent.spawn_later(0.5, conn.send, api_response("late\n"))
        return None

    peer.responders["api slow"] = slow
    conn = _connect(peer, metrics=metrics, command_timeout_s=0.2)
    try:
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout, match="no reply to slow"):
            conn.api("slow")
        assert 0.15 < time.monotonic() - t0 < 1.0
        # The late reply belongs to the timed-out command; the next command gets its own.
        gwait(lambda: not conn._commands_sent, message="late reply consumed")
        assert conn.api("status").startswith("UP")
        assert _value(metrics, "cccore_esl_command_errors_total",
                      {"command": "slow", "reason": "timeout"}) == 1
    finally:
        conn.close()


def test_pending_commands_fail_at_once_when_the_peer_closes(peer):
    peer.responders["api hold"] = lambda cmd, conn: None
    conn = _connect(peer, command_timeout_s=5.0)
    calls = [gevent.spawn(conn.api, "hold") for _ in range(3)]
    gwait(lambda: len([c for c in peer.commands if c == "api hold"]) == 3)
    t0 = time.monotonic()
    peer.stop()
    gevent.joinall(calls, timeout=2)
    assert time.monotonic() - t0 < 1.0
    for g in calls:
        assert isinstance(g.exception, NotConnected)
    with pytest.raises(NotConnected):
        conn.api("status")


def test_a_reply_nobody_asked_for_is_logged_and_dropped(peer, metrics, caplog):
    conn = _connect(peer, metrics=metrics)
    try:
        with caplog.at_level(logging.WARNING, logger="esl_handlers.connection"):
            peer.push(reply("+OK stray"))
            peer.push(api_response("stray body\n"))
            gwait(lambda: _value(metrics, "cccore_esl_unsolicited_replies_total",
                                 {"node": "fs1"}) == 2)
        assert "nobody asked for" in caplog.text
        assert conn.api("status").startswith("UP")
        assert conn.connected
    finally:
        conn.close()


@pytest.mark.parametrize("bad", [
    pytest.param(b"Content-Type: api/response\nContent-Length: 3\n+OK\n\n", id="missing-blank-line"),
    pytest.param(b"Content-Type: api/response\nContent-Length: -5\n\n", id="negative-length"),
    pytest.param(b"Content-Type: api/response\nContent-Length: 12ab\n\n", id="non-numeric-length"),
    pytest.param(b"Content-Type: api/response\nContent-Length: 99999999999\n\n", id="huge-length"),
    pytest.param(b"\x00\xff\xfegarbage \x01\x02\n\n", id="garbage"),
    # Well framed, but the event inside is not one JSON object.
    pytest.param(b"Content-Length: 9\nContent-Type: text/event-json\n\n{\"Event-N", id="broken-json-event"),
])
def test_a_framing_error_closes_the_connection_and_fails_pending(peer, metrics, bad, caplog):
    peer.responders["api hold"] = lambda cmd, c: None
    conn = _connect(peer, metrics=metrics, command_timeout_s=5.0)
    pending = gevent.spawn(conn.api, "hold")
    gwait(lambda: "api hold" in peer.commands)
    with caplog.at_level(logging.ERROR, logger="esl_handlers.connection"):
        peer.push(bad)
        assert conn.closed.wait(2)
    assert conn.close_reason == "framing error"
    assert "framing error" in caplog.text
    assert _value(metrics, "cccore_esl_framing_errors_total", {"node": "fs1"}) == 1
    pending.join(2)
    assert isinstance(pending.exception, NotConnected)


def test_truncated_body_then_close_fails_pending(peer):
    peer.responders["api hold"] = lambda cmd, c: None
    conn = _connect(peer, command_timeout_s=5.0)
    pending = gevent.spawn(conn.api, "hold")
    gwait(lambda: "api hold" in peer.commands)
    live = peer.latest()
    live.send(b"Content-Type: api/response\nContent-Length: 100\n\nonly ten b")
    live.close()
    assert conn.closed.wait(2)
    pending.join(2)
    assert isinstance(pending.exception, NotConnected)


def test_bgapi_result_reaches_its_caller_and_others_jobs_are_ignored(peer):
    seen_a: list[Event] = []
    seen_b: list[Event] = []
    a = _connect(peer, seen_a)
    b = _connect(peer, seen_b)
    try:
        a.subscribe(["BACKGROUND_JOB"])
        b.subscribe(["BACKGROUND_JOB"])
        job = a.bgapi("status")
        assert job.job_uuid
        assert job.get(2).startswith("UP 0 years")
        # FreeSWITCH broadcast the job to b too: b saw it and ignored it quietly.
        gwait(lambda: any(e.job_uuid == job.job_uuid for e in seen_b))
        assert not b._jobs and b.connected
        assert job.event is not None and job.event.core_uuid == peer.core_uuid
        assert a.probe_core_uuid() == peer.core_uuid
    finally:
        a.close()
        b.close()


def test_pending_jobs_fail_when_the_connection_drops(peer):
    peer.job_delay = 5
    conn = _connect(peer)
    conn.subscribe(["BACKGROUND_JOB"])
    job = conn.bgapi("status")
    peer.stop()
    with pytest.raises(NotConnected):
        job.get(2)


def test_bgapi_result_times_out(peer):
    peer.job_delay = 5
    conn = _connect(peer)
    try:
        conn.subscribe(["BACKGROUND_JOB"])
        with pytest.raises(CommandTimeout, match="no BACKGROUND_JOB"):
            conn.bgapi("status").get(0.2)
        assert not conn._jobs
    finally:
        conn.close()


def test_non_utf8_json_and_xml_events_do_not_kill_the_reader(peer):
    events: list[Event] = []
    conn = _connect(peer, events)
    try:
        live = peer.latest()
        live.send(event_frame(b"Event-Name: CHANNEL_PARK\nCore-UUID: " + peer.core_uuid.encode()
                              + b"\nUnique-ID: u1\nCaller-Caller-ID-Name: %FF%FEx\n\n"))
        body = json.dumps({"Event-Name": "CHANNEL_ANSWER", "Unique-ID": "u2",
                           "Core-UUID": peer.core_uuid}).encode()
        live.send(event_frame(body, "text/event-json"))
        xml = b"<event><headers><Event-Name>HEARTBEAT</Event-Name></headers></event>"
        live.send(event_frame(xml, "text/event-xml"))
        live.send(b"Content-Type: log/data\nContent-Length: 4\n\nlog\n")
        raw = b"\xc3\x28 not utf-8"
        live.send(b"Content-Type: api/response\nContent-Length: %d\n\n" % len(raw) + raw)
        gwait(lambda: len(events) == 2)
        assert [e.name for e in events] == ["CHANNEL_PARK", "CHANNEL_ANSWER"]
        assert events[0].raw("Caller-Caller-ID-Name") == b"\xff\xfex"
        assert events[1].unique_id == "u2"
        assert conn.core_uuid == peer.core_uuid
        assert conn.api("status").startswith("UP")
    finally:
        conn.close()


def test_sendmsg_and_subscribe_with_filters(peer):
    conn = _connect(peer)
    try:
        conn.subscribe(["CHANNEL_PARK", "CUSTOM callcenter::info", "HEARTBEAT"],
                       [("Unique-ID", "abc")])
        assert "event plain CHANNEL_PARK HEARTBEAT CUSTOM callcenter::info" in peer.commands
        assert "filter Unique-ID abc" in peer.commands
        assert conn.sendmsg("abc-1", {"call-command": "hangup",
                                      "hangup-cause": "NORMAL_CLEARING"}) == "+OK"
        assert ("sendmsg abc-1\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING"
                in peer.commands)
        with pytest.raises(ValueError):
            conn.sendmsg("abc-1", {"execute-app-arg": "x\n\nauth y"})
        with pytest.raises(ValueError):
            conn.subscribe(["ALL"])
        before = len(peer.commands)
        for raw in ("api status\n\nauth x", "api st\ratus", "api \x00", "  "):
            with pytest.raises(ValueError):
                conn.send(raw)
        assert len(peer.commands) == before, "nothing reached the wire"
        peer.responders["filter"] = lambda cmd, c: reply("-ERR invalid")
        with pytest.raises(EslError, match="filter"):
            conn.subscribe(["CHANNEL_PARK"], [("Unique-ID", "x")])
    finally:
        conn.close()


def test_the_password_never_reaches_logs_or_reprs(peer, caplog):
    caplog.set_level(logging.DEBUG)
    conn = _connect(peer)
    conn.subscribe(["BACKGROUND_JOB"])
    conn.bgapi("status").get(2)
    peer.responders["api hold"] = lambda cmd, c: None
    with pytest.raises(CommandTimeout):
        conn.api("hold", timeout=0.1)
    text = repr(conn) + repr(conn.node) + repr(conn.esl)
    conn.close()
    bad = EslConnection(_node(peer, password=SECRET + "x"), _esl())
    with pytest.raises(AuthFailed) as err:
        bad.connect()
    text += str(err.value) + repr(bad)
    for record in caplog.records:
        text += record.getMessage() + repr(record.args) + repr(record.__dict__)
    assert caplog.records, "expected some log records"
    assert SECRET not in text


def test_a_caller_sees_its_reply_before_on_event_sees_the_events_it_caused(peer):
    # FreeSWITCH writes the reply first, then the events (often in the same TCP segment).
    def answer_then_event(cmd, conn):
        return api_response("+OK\n") + plain_event(
            "CHANNEL_HANGUP_COMPLETE", peer.core_uuid, {"Unique-ID": "u9"})

    peer.responders["api sim_hangup"] = answer_then_event
    state = {"replied": False, "seen_after_reply": None}

    def on_event(event: Event) -> None:
        if event.name == "CHANNEL_HANGUP_COMPLETE":
            state["seen_after_reply"] = state["replied"]

    conn = EslConnection(_node(peer), _esl(), on_event=on_event)
    conn.connect()
    try:
        def caller() -> None:
            conn.api("sim_hangup u9")
            state["replied"] = True

        gevent.spawn(caller)
        gwait(lambda: state["seen_after_reply"] is not None)
        assert state["seen_after_reply"] is True
    finally:
        conn.close()


def test_a_listener_killed_for_lost_events_says_why_and_stops_taking_commands(peer, caplog):
    # MES kill_listener: a listener whose event queue overflowed (MAX_MISSED lost events) gets
    # a disconnect notice carrying the reason, then its socket is shut down.
    conn = _connect(peer)
    body = b"killed listener because of lost events\n"
    with caplog.at_level(logging.WARNING, logger="esl_handlers.connection"):
        peer.push(b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(body)
                  + body)
        gwait(lambda: not conn.connected, message="the notice to be seen")
        with pytest.raises(NotConnected):
            conn.api("status")
        peer.latest().close()
        assert conn.closed.wait(2)
    assert conn.close_reason == "disconnected by FreeSWITCH: killed listener because of lost events"
    assert any("lost events" in r.getMessage() for r in caplog.records)


def test_the_goodbye_after_exit_is_not_a_warning(peer, caplog):
    conn = _connect(peer)
    with caplog.at_level(logging.WARNING, logger="esl_handlers.connection"):
        conn.close()
    assert conn.close_reason == "closed by cc-core"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_acl_refusal_is_reported_as_such():
    # MES listener_run, client address not allowed by event_socket.conf.xml's apply-inbound-acl:
    # the rejection comes instead of auth/request, then the socket closes.
    rude = b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"

    def refuse(sock, _addr):
        sock.sendall(rude)
        sock.close()

    server = StreamServer(("127.0.0.1", 0), refuse)
    server.start()
    try:
        conn = EslConnection(NodeConfig(name="acl", port=server.server_port, password=SECRET),
                             _esl())
        with pytest.raises(AuthFailed, match="ACL"):
            conn.connect()
        assert conn.closed.is_set() and SECRET not in repr(conn)
    finally:
        server.stop()
