"""The private Redis Cluster the tests start: up with every slot served, the same with or
without redis-cli, and nothing left behind when stopped."""

from __future__ import annotations

import os
import shutil
import socket

import pytest
from redis.cluster import RedisCluster

from cc_core import redisconn
from cc_core.redis_server import CLUSTER_BUS_OFFSET, PrivateRedisCluster


@pytest.mark.parametrize("with_redis_cli", [True, False], ids=["redis-cli", "by-hand"])
def test_a_private_cluster_serves_every_slot_and_leaves_nothing_behind(
        with_redis_cli: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not with_redis_cli:
        which = shutil.which
        monkeypatch.setattr(shutil, "which",
                            lambda name, *a, **k: None if name == "redis-cli" else which(name))
    cluster = PrivateRedisCluster(masters=3).start()
    try:
        rc = redisconn.connect(cluster.url)
        assert isinstance(rc, RedisCluster)
        assert sorted(n.port for n in rc.get_primaries()) == sorted(cluster.ports)
        info = rc.cluster_info(target_nodes=RedisCluster.RANDOM)
        assert (info["cluster_state"], int(info["cluster_slots_assigned"])) == ("ok", 16384)
        for i in range(50):   # keys spread over every master, each readable through the client
            rc.set(f"k{i}", i)
        assert [int(rc.get(f"k{i}")) for i in range(50)] == list(range(50))
        assert {rc.get_node_from_key(f"k{i}").port for i in range(50)} == set(cluster.ports)
        rc.close()
        workdir, ports = cluster.workdir, cluster.ports
    finally:
        cluster.stop()
    assert not os.path.exists(workdir)
    for port in (*ports, *(p + CLUSTER_BUS_OFFSET for p in ports)):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
