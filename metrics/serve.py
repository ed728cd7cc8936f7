"""``cc-core metrics serve``: the one process per deployment that exports the queue and agent
KPIs (``metrics.queues``) read from the ACD's Redis state. Workers keep their own ports for
their per-process metrics; this one holds no call and can run anywhere Redis is reachable."""

from __future__ import annotations

import logging
import signal
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app

from metrics.business import WALK_S, BusinessMetrics, RecordingsDisk
from metrics.queues import KpiMetrics

log = logging.getLogger(__name__)


def build(redis: Any, disk: RecordingsDisk | None = None
          ) -> tuple[CollectorRegistry, KpiMetrics]:
    """The registry the command serves: every tenant of the applied configuration (per-agent
    series for those that enable them), the business metrics, and the recordings disk when
    ``disk`` is given."""
    from cc_core.tenants.store import TenantDirectory

    directory = TenantDirectory(redis)
    registry = CollectorRegistry()
    kpi = KpiMetrics(registry, redis,
                     lambda: [(t.tenant, t.timezone) for t in directory.all_tenants()],
                     agent_tenants=lambda: [(t.tenant, t.timezone)
                                            for t in directory.all_tenants()
                                            if t.metrics.per_agent])
    BusinessMetrics(registry, redis, lambda: [t.tenant for t in directory.all_tenants()], disk)
    return registry, kpi


def serve(host: str, port: int, redis_url: str, timeout_s: float,
          recordings_root: str | None = None, walk_s: float = WALK_S) -> None:
    """Serve ``/metrics`` on ``host:port`` until SIGTERM/SIGINT. Call after gevent's
    monkey-patching (the CLI does it first). ``timeout_s`` bounds each Redis read, hence a
    scrape when Redis hangs. ``recordings_root``: also the recordings' disk usage, the tree
    walked every ``walk_s``."""
    import gevent
    from gevent.pywsgi import WSGIServer

    from cc_core import redisconn

    # A single server or a Redis Cluster (redis+cluster://), as the workers use.
    client = redisconn.connect(redis_url, socket_timeout=timeout_s,
                               socket_connect_timeout=timeout_s)
    disk = RecordingsDisk(recordings_root, walk_s) if recordings_root else None
    registry, _ = build(client, disk)
    if disk is not None:
        disk.start()
    server = WSGIServer((host, port), make_wsgi_app(registry), log=None, error_log=log)
    server.start()
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    log.info("metrics: serving the queue KPIs on http://%s:%d/metrics", host,
             server.server_port, extra={"metrics_host": host,
                                        "metrics_port": server.server_port})
    server.serve_forever()
