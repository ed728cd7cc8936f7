"""Every Redis key name used by ``esl_handlers``, in one place and one style.

Style: ``cc:{<tag>}:<name>``, as the product's ``cc_core.keys``: every key carries exactly one
hash tag, and keys that a Lua script touches together share it, so the script runs unchanged on
Redis Cluster (all its KEYS in one slot). A FreeSWITCH node's keys use the tag ``{n:<node>}``; node names are restricted by
``NodeConfig.name`` to ``[A-Za-z0-9_.-]``, so they cannot contain braces or colons.

| key                       | type   | holds                                                       |
|---------------------------|--------|-------------------------------------------------------------|
| ``cc:{n:<node>}:lease``   | string | id of the worker that consumes the node's events; PX = TTL  |
| ``cc:{n:<node>}:fence``   | string | fencing counter, INCR on each acquisition; never expires    |
| ``cc:{w:<worker_id>}:heartbeat`` | hash | a live worker's heartbeat (pid, index, metrics port, |
|                           |        | nodes owned); expires when the worker stops renewing it     |
"""

from __future__ import annotations

PREFIX = "cc"


def _node_tag(node: str) -> str:
    return f"{{n:{node}}}"


def node_lease(node: str) -> str:
    """The lease: who consumes ``node``'s event stream right now (absent = nobody)."""
    return f"{PREFIX}:{_node_tag(node)}:lease"


def node_fence(node: str) -> str:
    """The fencing counter of ``node``'s lease; same slot as ``node_lease``."""
    return f"{PREFIX}:{_node_tag(node)}:fence"


def node_scoped(node: str, name: str) -> str:
    """A further key in ``node``'s slot (e.g. one written under the lease by a fenced write)."""
    return f"{PREFIX}:{_node_tag(node)}:{name}"


def worker(worker_id: str) -> str:
    """A worker process's heartbeat hash."""
    return f"{PREFIX}:{{w:{worker_id}}}:heartbeat"
