"""One place that turns a configured ``redis_url`` into a client: a single server or a Redis
Cluster, chosen by the URL's scheme.

* ``redis://HOST:PORT/DB``, ``rediss://...``, ``unix:///path?db=N``: one server (``redis.Redis``);
* ``redis+cluster://HOST:PORT``, ``rediss+cluster://...``: a Redis Cluster
  (``redis.cluster.RedisCluster``); HOST:PORT is any one node, the client learns the others.

The product runs unchanged on both: every script's keys share one tenant's (or node's) hash tag
(``cc_core.keys``), and reads that span tenants go through pipelines, which a cluster client
splits by node.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SINGLE_SCHEMES = ("redis", "rediss", "unix")
SCHEMES = (*SINGLE_SCHEMES, *CLUSTER_SCHEMES)


def check_url(url: str) -> str:
    """``url`` unchanged, or ValueError saying which schemes are understood."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(
            f"{url!r}: the scheme must be one of {', '.join(s + '://' for s in SCHEMES)} "
            "(redis+cluster://HOST:PORT names any node of a Redis Cluster)")
    if scheme in CLUSTER_SCHEMES and urlsplit(url).path.strip("/") not in ("", "0"):
        raise ValueError(f"{url!r}: a Redis Cluster has database 0 only; drop the /DB part")
    return url


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def connect(url: str, *, pool_size: int | None = None, pool_timeout: float | None = None,
            **kwargs: Any) -> Any:
    """A client for ``url`` (``redis.Redis`` or ``RedisCluster``; both offer the commands,
    scripts and pipelines the product uses). With ``pool_size``, connections come from a
    blocking pool of that size (per node on a cluster): under overload a caller waits up to
    ``pool_timeout`` for one instead of failing with "Too many connections"."""
    check_url(url)
    if pool_size is not None:
        kwargs.update(max_connections=pool_size, timeout=pool_timeout)
    scheme = urlsplit(url).scheme
    if scheme in CLUSTER_SCHEMES:
        plain = CLUSTER_SCHEMES[scheme] + url[len(scheme):]
        if pool_size is not None:
            kwargs["connection_pool_class"] = redis.BlockingConnectionPool
        try:
            return RedisCluster.from_url(plain, **kwargs)
        except RedisClusterException as exc:
            # Unlike a single-server client, this one connects at once (to learn the slot
            # map): report it as the connection error callers already handle.
            raise redis.ConnectionError(f"Redis Cluster at {url}: {exc}") from exc
    if pool_size is not None:
        return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, **kwargs))
    return redis.Redis.from_url(url, **kwargs)


def run_pipeline(pipe: Any) -> list[Any]:
    """``pipe.execute()`` in one round trip when it carries scripts.

    redis-py asks the server ``SCRIPT EXISTS`` for a pipeline's scripts before every run of
    it: a round trip of its own, ahead of the pipeline, on each hot-path step that pipelines a
    script (a caller's join, an agent's offer). Here the scripts go by SHA at once. When the
    server has lost some of them (restarted empty, ``SCRIPT FLUSH``, and others reloaded one
    by one since), the commands it refused with ``NOSCRIPT`` are run again, in their order,
    once their scripts are loaded; the ones that ran keep their replies (a dispatch that ran
    must not run twice: its offers would be lost). The refused ones then run after the rest,
    so commands pipelined this way must not need each other's order: a caller enqueued after
    its dispatch (``Acd.enqueue_dispatch``) is offered by the ACD loop's next pass, within a
    second. Other errors are raised as ``execute()`` raises them, the first one."""
    scripts = pipe.scripts
    stack = list(pipe.command_stack)
    pipe.scripts = set()
    replies = list(pipe.execute(raise_on_error=False))
    refused = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if refused:
        # execute() reset the pipeline: the refused commands again, their scripts loaded first.
        pipe.command_stack = [stack[i] for i in refused]
        pipe.scripts = scripts
        for i, reply in zip(refused, pipe.execute(raise_on_error=False), strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
