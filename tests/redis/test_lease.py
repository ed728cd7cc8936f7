"""Node leases on a real Redis: ownership, fencing, lapse and takeover, Redis restarts."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from cc_core.errors import LeaseLost
from cc_core.redis_server import PrivateRedis
from esl_handlers import keys
from esl_handlers.lease import LeaseScripts, NodeLease, lease_holder
from tests.conftest import wait_for


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    yield client
    client.close()


def test_acquire_renew_release_hand_the_node_over(r: redis.Redis) -> None:
    a = NodeLease(r, "fs1", "worker-a", 5000)
    b = NodeLease(r, "fs1", "worker-b", 5000)

    assert a.try_acquire()
    assert lease_holder(r, "fs1") == "worker-a"
    assert a.valid()
    assert not b.try_acquire(), "a second worker must not get a held lease"
    assert not b.valid()

    a.renew()
    assert 4000 < r.pttl(keys.node_lease("fs1")) <= 5000

    assert a.release()
    assert not a.valid()
    assert lease_holder(r, "fs1") is None
    assert b.try_acquire(), "a released lease is free at once, not after the TTL"
    assert b.token is not None and a.lost_reason == "released"


def test_each_acquisition_issues_a_higher_token(r: redis.Redis) -> None:
    a = NodeLease(r, "fs1", "worker-a", 5000)
    b = NodeLease(r, "fs1", "worker-b", 5000)
    tokens = []
    for lease in (a, b, a, b):
        assert lease.try_acquire()
        assert lease.token is not None
        tokens.append(lease.token)
        lease.release()
    assert tokens == sorted(tokens) and len(set(tokens)) == 4


def test_stale_token_is_refused_after_takeover(r: redis.Redis) -> None:
    a = NodeLease(r, "fs1", "worker-a", 300)
    b = NodeLease(r, "fs1", "worker-b", 300)
    assert a.try_acquire()
    old = a.token
    a.fenced_set(keys.node_scoped("fs1", "note"), "from-a")

    # a stops renewing (paused); its lease lapses and b takes the node.
    wait_for(b.try_acquire, timeout=3, message="b to take over the lapsed lease")
    assert not a.valid(), "the local deadline passes before Redis expires the lease"

    with pytest.raises(LeaseLost):
        a.check()
    with pytest.raises(LeaseLost):
        a.check(old)  # the token alone, as an action would carry it
    with pytest.raises(LeaseLost):
        a.fenced_set(keys.node_scoped("fs1", "note"), "from-a-again", token=old)
    with pytest.raises(LeaseLost):
        a.renew()

    b.fenced_set(keys.node_scoped("fs1", "note"), "from-b")
    assert b.check() == b.token
    assert r.get(keys.node_scoped("fs1", "note")) == b"from-b"


def test_reacquiring_own_lease_kills_the_old_token(r: redis.Redis) -> None:
    a = NodeLease(r, "fs1", "worker-a", 5000)
    assert a.try_acquire()
    old = a.token
    assert a.try_acquire()
    assert a.token is not None and old is not None and a.token > old
    with pytest.raises(LeaseLost):
        a.check(old)


def test_paused_owner_stops_by_its_local_margin_before_redis_expiry(r: redis.Redis) -> None:
    now = [1000.0]
    a = NodeLease(r, "fs1", "worker-a", 5000, clock=lambda: now[0])
    assert a.margin_ms == 1000 and a.renew_interval_s == pytest.approx(5 / 3)
    assert a.try_acquire()
    now[0] += 3.9
    assert a.valid()
    now[0] += 0.2  # 4.1 s since the acquire was sent: past ttl - margin
    assert not a.valid()
    # Redis still has the lease for this owner, but the owner must not act any more.
    assert lease_holder(r, "fs1") == "worker-a"
    with pytest.raises(LeaseLost):
        a.renew()
    with pytest.raises(LeaseLost):
        a.check()
    assert a.lost_reason == "margin"


def test_lapsed_lease_is_taken_over_within_its_ttl(r: redis.Redis) -> None:
    a = NodeLease(r, "fs1", "worker-a", 400)
    b = NodeLease(r, "fs1", "worker-b", 400)
    assert a.try_acquire()
    start = time.monotonic()
    wait_for(b.try_acquire, timeout=3, interval=0.02, message="takeover")
    took = time.monotonic() - start
    assert 0.3 <= took < 0.4 + 0.5, took


def test_contenders_never_both_hold_the_lease(redis_url: str) -> None:
    """Three workers race for one node for ~2 s, pausing past the TTL at random; the periods
    in which each believed itself owner (acquire reply .. local deadline) never overlap."""
    ttl_ms = 300
    stop_at = time.monotonic() + 2.0
    periods: list[tuple[float, float, str]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def contender(name: str, seed: int) -> None:
        rnd = random.Random(seed)
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        lease = NodeLease(client, "fs1", name, ttl_ms)
        start = 0.0
        try:
            while time.monotonic() < stop_at:
                if lease.token is None:
                    if lease.try_acquire():
                        start = time.monotonic()
                else:
                    try:
                        lease.renew()
                    except LeaseLost:
                        with lock:
                            periods.append((start, lease.deadline, name))
                        continue
                    if rnd.random() < 0.2:
                        # Give up politely now and then: a warm stop.
                        end = time.monotonic()
                        lease.release()
                        with lock:
                            periods.append((start, end, name))
                        continue
                pause = lease.renew_interval_s if rnd.random() > 0.3 else ttl_ms / 1000 * 1.5
                time.sleep(rnd.uniform(0.2, 1.0) * pause)
            if lease.token is not None:
                with lock:
                    periods.append((start, min(lease.deadline, time.monotonic()), name))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=contender, args=(f"w{i}", i)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors, errors
    assert len(periods) >= 5, f"too few hand-overs to mean anything: {periods}"
    assert len({p[2] for p in periods}) >= 2
    periods.sort()
    for (_s1, e1, n1), (s2, _e2, n2) in zip(periods, periods[1:], strict=False):
        assert e1 <= s2, f"{n1} held until {e1:.3f} but {n2} took over at {s2:.3f}"


def test_simultaneous_acquire_has_one_winner(redis_url: str) -> None:
    for round_ in range(20):
        node = f"race{round_}"
        barrier = threading.Barrier(4)
        won: list[str] = []

        def attempt(name: str, node: str = node, barrier: threading.Barrier = barrier,
                    won: list[str] = won) -> None:
            client = redis.Redis.from_url(redis_url)
            lease = NodeLease(client, node, name, 5000)
            barrier.wait(timeout=5)
            if lease.try_acquire():
                won.append(name)
            client.close()

        threads = [threading.Thread(target=attempt, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert len(won) == 1, won


def _stat_calls(r: redis.Redis, command: str) -> int:
    stats = r.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_scripts_are_loaded_once_and_called_by_sha(r: redis.Redis) -> None:
    r.script_flush()
    r.config_resetstat()
    scripts = LeaseScripts(r)
    a = NodeLease(r, "fs1", "worker-a", 5000, scripts=scripts)
    b = NodeLease(r, "fs2", "worker-a", 5000, scripts=scripts)
    for lease in (a, b):
        assert lease.try_acquire()
        for _ in range(5):
            lease.renew()
        lease.check()
        lease.release()
    assert _stat_calls(r, "eval") == 0, "script bodies must not be sent with every call"
    # EVALSHA: 2 x (acquire + 5 renew + check + release) plus one failed NOSCRIPT try per script.
    assert _stat_calls(r, "evalsha") == 2 * 8 + 4
    loads = r.info("commandstats").get("cmdstat_script|load", {}).get("calls", 0)
    assert loads == 4, "each script is loaded once, on first use"


def test_redis_restart_mid_lease(tmp_path: object) -> None:
    """Redis dies while a worker owns the node and comes back empty (no persistence): the owner
    stops at its local deadline while Redis is away, then finds its lease gone; a new owner gets
    a token above the old one, so the old one is still refused; scripts reload by themselves."""
    server = PrivateRedis().start()
    try:
        r = redis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        a = NodeLease(r, "fs1", "worker-a", 600)
        b = NodeLease(redis.Redis.from_url(server.url, socket_timeout=0.5), "fs1", "worker-b", 600)
        assert a.try_acquire()
        old = a.token
        assert old is not None

        port = server.port
        server.stop()
        with pytest.raises(redis.exceptions.ConnectionError):
            a.renew()
        assert a.token == old, "a Redis error alone does not end the lease early"
        wait_for(lambda: not a.valid(), timeout=2, message="the local deadline to pass")

        server.port = port
        server.start()
        wait_for(lambda: _ping(r), timeout=5, message="redis back")
        with pytest.raises(LeaseLost):
            a.renew()
        assert b.try_acquire()
        assert b.token is not None and b.token > old
        with pytest.raises(LeaseLost):
            a.check(old)
        assert a.try_acquire() is False
    finally:
        server.stop()


def _ping(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except redis.exceptions.ConnectionError:
        return False


# ---- NodeManager: ownership in a worker, with stand-in links ---------------------------------
class _FakeLink:
    def __init__(self, node, esl, *, consume_events, dispatcher, metrics=None, on_up=None,
                 on_down=None):
        self.node = node
        self.is_up = False
        self.consume = consume_events
        self.dispatcher = dispatcher
        self.on_up = on_up
        self.consume_calls: list[bool] = []

    def start(self) -> None:
        self.is_up = True
        if self.on_up:
            self.on_up(self, False)

    def stop(self, timeout: float = 5) -> None:
        self.is_up = False

    def set_consume(self, consume: bool) -> None:
        self.consume = consume
        self.consume_calls.append(consume)

    def show_channels(self) -> list[dict]:
        return [{"uuid": "call-1"}]


class _Event:
    def __init__(self, name: str) -> None:
        self.name = name


def _manager(redis_url: str, owner: str, ttl_ms: int, reconciled: list, submitted: list):
    from prometheus_client import CollectorRegistry

    from cc_core.config import Config
    from esl_handlers.nodes import NodeManager
    from metrics.lease import LeaseMetrics

    class _Dispatcher:
        def submit(self, event, link):
            submitted.append((owner, event.name))

    cfg = Config.model_validate({"nodes": [{"name": "fs1"}], "esl": {"lease_ttl_ms": ttl_ms}})
    registry = CollectorRegistry()
    mgr = NodeManager(cfg, redis.Redis.from_url(redis_url, socket_timeout=1), owner_id=owner,
                      dispatcher=_Dispatcher(),
                      reconcile=lambda node, rows: reconciled.append((owner, node, rows)),
                      metrics=LeaseMetrics(registry), link_factory=_FakeLink)
    return mgr, registry


def test_node_manager_one_owner_consumes_reconciles_and_hands_over(redis_url: str) -> None:
    reconciled: list = []
    submitted: list = []
    a, reg_a = _manager(redis_url, "worker-a", 600, reconciled, submitted)
    b, reg_b = _manager(redis_url, "worker-b", 600, reconciled, submitted)
    a.start()
    wait_for(lambda: a.owns("fs1"), message="a to own fs1")
    b.start()
    try:
        wait_for(lambda: reconciled, message="reconcile")
        assert reconciled == [("worker-a", "fs1", [{"uuid": "call-1"}])]
        assert a.links["fs1"].consume is True and b.links["fs1"].consume is False
        assert reg_a.get_sample_value("cccore_node_owner", {"node": "fs1"}) == 1
        assert reg_b.get_sample_value("cccore_node_owner", {"node": "fs1"}) == 0

        # Renewals keep a the owner well past the TTL; b never gets it meanwhile.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert a.owns("fs1") and not b.owns("fs1")
            import gevent
            gevent.sleep(0.05)

        # Events reach the dispatcher only through the owner's link.
        a.links["fs1"].dispatcher.submit(_Event("CHANNEL_PARK"), a.links["fs1"])
        b.links["fs1"].dispatcher.submit(_Event("CHANNEL_PARK"), b.links["fs1"])
        b.links["fs1"].dispatcher.submit(_Event("BACKGROUND_JOB"), b.links["fs1"])
        assert submitted == [("worker-a", "CHANNEL_PARK")]
        assert reg_b.get_sample_value("cccore_lease_fenced_events_total", {"node": "fs1"}) == 2

        # Warm stop of a: b takes over well before the TTL would have run out.
        started = time.monotonic()
        a.release_all()
        assert a.links["fs1"].consume is False and not a.owns("fs1")
        wait_for(lambda: b.owns("fs1"), timeout=2, message="b to take over")
        took = time.monotonic() - started
        assert took < 0.6, f"takeover after release took {took:.3f}s"
        wait_for(lambda: len(reconciled) == 2, message="b's reconcile")
        assert reconciled[1][0] == "worker-b"
    finally:
        a.stop(timeout=1)
        b.stop(timeout=1)


def test_node_manager_owner_stops_consuming_when_its_lease_is_taken(redis_url: str) -> None:
    reconciled: list = []
    submitted: list = []
    a, reg_a = _manager(redis_url, "worker-a", 600, reconciled, submitted)
    a.start()
    try:
        wait_for(lambda: a.owns("fs1"), message="a to own fs1")
        # Someone else's acquisition behind a's back (as after a Redis failover).
        r = redis.Redis.from_url(redis_url)
        r.delete(keys.node_lease("fs1"))
        intruder = NodeLease(r, "fs1", "worker-x", 5000)
        assert intruder.try_acquire()
        wait_for(lambda: not a.owns("fs1") and a.links["fs1"].consume is False, timeout=2,
               message="a to stop consuming")
        assert reg_a.get_sample_value("cccore_lease_lost_total",
                                      {"node": "fs1", "reason": "other_owner"}) == 1
        assert reg_a.get_sample_value("cccore_lease_renew_failures_total", {"node": "fs1"}) >= 1
    finally:
        a.stop(timeout=1)


def test_node_manager_stops_consuming_when_redis_goes_away() -> None:
    """Redis unreachable: the owner keeps the node only until its local deadline, then stops
    consuming without Redis' word; when Redis is back (empty), a worker owns the node again."""
    server = PrivateRedis().start()
    reconciled: list = []
    try:
        a, reg_a = _manager(server.url, "worker-a", 600, reconciled, [])
        a.start()
        wait_for(lambda: a.owns("fs1"), message="a to own fs1")
        port = server.port
        server.stop()
        lost_at = time.monotonic()
        wait_for(lambda: not a.owns("fs1") and a.links["fs1"].consume is False, timeout=3,
               message="a to stop consuming")
        took = time.monotonic() - lost_at
        assert took <= 0.6, f"consumed {took:.3f}s into a Redis outage; the lease is 0.6 s"
        assert reg_a.get_sample_value("cccore_lease_renew_failures_total", {"node": "fs1"}) >= 1
        assert reg_a.get_sample_value("cccore_node_owner", {"node": "fs1"}) == 0

        server.port = port
        server.start()
        wait_for(lambda: a.owns("fs1"), timeout=5, message="a to own fs1 again")
        assert a.links["fs1"].consume is True
        assert len(reconciled) == 2, "taking the node again reconciles again"
    finally:
        a.stop(timeout=1)
        server.stop()
