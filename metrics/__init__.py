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
