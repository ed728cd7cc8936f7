"""The tenant configuration on a real Redis Cluster: ``cc-core config apply`` with a
``redis+cluster://`` URL writes the directory (its ``{g}`` slot) and each tenant's blobs (their
own slots, on other masters), and a worker's directory reads them back."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from redis.cluster import RedisCluster

from cc_core import keys, redisconn
from cc_core.cli import cli
from cc_core.redis_server import free_port
from cc_core.tenants.loader import load_path
from cc_core.tenants.store import TenantDirectory, TenantStore
from tests.redis.test_tenant_store import folder


def test_config_apply_and_a_workers_directory_on_a_cluster(redis_cluster_url: str,
                                                           tmp_path: Path) -> None:
    rc = redisconn.connect(redis_cluster_url)
    tenants = {"beta": ["4006660001"], "gamma": ["4006660002"], "delta": ["4006660003"]}
    masters = {rc.get_node_from_key(k).name for k in (
        keys.directory(), *(keys.tenant_config_versions(t) for t in tenants))}
    assert len(masters) >= 2, masters     # the apply's writes span masters

    cfg = folder(tmp_path / "c", tenants)
    res = CliRunner().invoke(cli, ["config", "apply", str(cfg), "--redis-url", redis_cluster_url])
    assert res.exit_code == 0, res.output
    assert res.output.endswith("applied version 1 (was 0): added beta delta gamma\n")
    res = CliRunner().invoke(cli, ["config", "show", "gamma", "--redis-url", redis_cluster_url])
    assert res.exit_code == 0 and "\ntenant: gamma\n" in res.output

    workers = TenantDirectory(rc)
    found = workers.lookup("4006660003")
    assert found is not None and found[0].tenant == "delta"
    # Later versions prune the old blobs of each tenant, slot by slot.
    store = TenantStore(rc)
    for gen in range(7):
        store.apply(load_path(folder(tmp_path / "c", tenants, {"beta": f"gen {gen}"})))
    beta = rc.keys("cc:{t:beta}:config:v[0-9]*", target_nodes=RedisCluster.ALL_NODES)
    assert len(beta) == 5
    store.apply(load_path(folder(tmp_path / "c", {"gamma": ["4006660002"]})))
    assert workers.refresh() and workers.tenant("beta") is None
    rc.close()


def test_a_cluster_nobody_listens_on_is_reported_with_the_url(tmp_path: Path) -> None:
    url = f"redis+cluster://127.0.0.1:{free_port()}"
    cfg = folder(tmp_path / "c", {"beta": ["4006660001"]})
    res = CliRunner().invoke(cli, ["config", "apply", str(cfg), "--redis-url", url])
    assert res.exit_code == 3, res.output
    assert f"cannot use Redis at {url}" in res.output
