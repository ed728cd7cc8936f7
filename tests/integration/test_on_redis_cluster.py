"""A worker whose ``redis_url`` is ``redis+cluster://`` serves queue calls end to end on a real
Redis Cluster (3 masters): the node lease, call records, tenant sync, ACD scripts, the offers
channel and the finished-calls stream all work unchanged there.

The scenarios are those of ``test_acd_flow``, run again with the module's ``cluster`` fixture
pointing the simulator's worker at the private cluster instead of one server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster, running_cluster
from tests.integration.test_acd_flow import (  # noqa: F401 - collected here again, on a cluster
    acd_flow,
    test_a_busy_agent_gets_the_busy_delay_and_the_next_agent_answers,
    test_a_caller_is_offered_to_an_agent_bridged_and_the_agent_wraps_up,
    test_ring_all_bridges_the_first_to_answer_and_hangs_up_every_other_leg,
    test_the_callers_hang_up_frees_the_ringing_agent_at_once,
)

pytestmark = pytest.mark.slow


@pytest.fixture(name="cluster")
def _cluster_on_redis_cluster(tmp_path: Path, redis_cluster_url: str) -> Iterator[Cluster]:
    yield from running_cluster(tmp_path, redis_cluster_url)


def test_the_worker_s_keys_spread_over_every_master(redis_cluster_url: str) -> None:
    """What makes the scenarios above a cluster test: the tenant's keys, the node's lease and
    the tenant directory each sit on a different master, so a worker that talked to the first
    node alone (or ran a script across them) would fail with MOVED / CROSSSLOT."""
    from cc_core import keys as product_keys
    from cc_core import redisconn
    from esl_handlers import keys as esl_keys
    from tests.integration.cluster import NODE

    rc = redisconn.connect(redis_cluster_url)
    try:
        owners = {rc.get_node_from_key(k).name for k in (
            product_keys.acd_agents("acdtest"), esl_keys.node_lease(NODE),
            product_keys.directory())}
    finally:
        rc.close()
    assert len(owners) == 3, owners
