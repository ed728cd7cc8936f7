"""Prometheus metrics of cc-core: one naming scheme for every metric.

Every name is built by prometheus-client from ``namespace=NAMESPACE``, a ``subsystem=`` and, for
a measured quantity, ``unit=`` in base units (``seconds``; counters get ``_total`` from the
client): ``cccore_<subsystem>_<name>[_<unit>][_total]``. Names are a contract with dashboards and
alert rules; README "Observability" lists them.

Each metric class takes the registry to register on; ``None`` registers nothing (the objects
still count), so tests build as many sets as they like and nothing lands in the client's global
registry by accident. A worker process builds one registry (``cc_core.worker``).
"""

from __future__ import annotations

NAMESPACE = "cccore"


def full_name(subsystem: str, name: str, unit: str = "") -> str:
    """The name prometheus-client builds from the same arguments, for custom collectors
    (whose metric families take a full name)."""
    built = "_".join(part for part in (NAMESPACE, subsystem, name) if part)
    if unit and not built.endswith("_" + unit):
        built += "_" + unit
    return built


def native_locks() -> None:
    """Give prometheus-client's values the OS lock again in a gevent-patched process.

    Each counter increment and histogram observation takes a lock. After
    ``monkey.patch_all()`` the client builds gevent locks, which cost the worker's event path
    about 70 % more per metric operation (0.44 against 0.26 us an increment, 0.92 against
    0.53 an observation, measured here). An OS lock is safe there: it is held for one
    addition, never across a greenlet switch, and the worker runs no OS thread that records.
    Call once after patching, before any metric is built."""
    from gevent import monkey

    if not monkey.is_module_patched("threading"):
        return
    import prometheus_client.metrics
    import prometheus_client.values

    lock = monkey.get_original("threading", "Lock")
    prometheus_client.values.Lock = lock
    prometheus_client.metrics.Lock = lock
