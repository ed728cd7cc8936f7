"""Prometheus metrics of the call flow, one set per worker process.

Labels: ``node`` from config, ``tenant`` from the tenants' configuration (``""`` for a number no
tenant has), ``outcome`` from the flow's own list, ``reason`` from the sweep's. Nothing a caller
sends (number, name, keys) and no call UUID ever reaches a label.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from metrics import NAMESPACE, full_name

if TYPE_CHECKING:
    from cc_core.flow.quality import CallQuality

# Sub-millisecond resolution where the target lives (p99 under 5 ms), coarse beyond.
SETUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
                 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# MOS: FreeSWITCH's 1-4.5 scale (R 100 -> 4.50, 94 -> 4.42, 75 -> 3.82, 50 -> 2.58).
MOS_BUCKETS = (1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.45, 4.5)
# Jitter: a few ms on a healthy network, tens of ms when voice suffers.
JITTER_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
LOSS_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0)

#: (node, tenant) of each call this worker runs right now.
LiveCalls = Callable[[], Iterable[tuple[str, str]]]


class CallFlowMetrics:
    """The call flow's metrics, registered on ``registry`` (nowhere if None)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        ns = NAMESPACE
        self.registry = registry
        self.swept = Counter(
            "swept", "Live 400 calls the node owner's periodic sweep took because nothing else "
            "did, by reason (unclaimed: parked and never claimed; stalled: its holder "
            "stopped). Any increase means an event or a step was lost upstream.",
            ["node", "reason"], namespace=ns, subsystem="calls", registry=registry)
        self.outcomes = Counter(
            "calls", "Finished 400 calls by tenant and outcome (answered_by_agent, voicemail, "
            "blacklisted, unallocated, caller_hung_up, ...)", ["tenant", "outcome"],
            namespace=ns, registry=registry)
        # Counted once per call, where it is first claimed (a resumed call is not new), so
        # rate() of it is the new calls per second and it matches cccore_calls_total over time.
        self.started = Counter(
            "started", "New 400 calls this worker took (claimed, or refused as an unknown "
            "number: tenant \"\"), by tenant; resumed calls are not counted again",
            ["tenant"], namespace=ns, subsystem="calls", registry=registry)
        self.setup = Histogram(
            "setup", "From a parked call's CHANNEL_PARK read off the socket to the first "
            "command the core sends for it (all decisions taken in between); the switch's own "
            "delay is not in it", unit="seconds", buckets=SETUP_BUCKETS, namespace=ns,
            subsystem="call", registry=registry)

        # Call quality from the switch's RTP statistics at hang-up (cc_core.flow.quality):
        # the caller's leg, calls that received audio only.
        self.mos = Histogram(
            "mos", "Per call, FreeSWITCH's MOS of the caller's audio at hang-up "
            "(rtp_audio_in_mos: 4.5 is the top, derived from packet flaws)",
            ["node", "tenant"], buckets=MOS_BUCKETS, namespace=ns, subsystem="call",
            registry=registry)
        self.jitter = Histogram(
            "jitter", "Per call, the mean jitter of the caller's audio: the standard deviation "
            "of its packets' inter-arrival time (square root of the midpoint of "
            "rtp_audio_in_jitter_min/max_variance)", ["node", "tenant"], unit="seconds",
            buckets=JITTER_BUCKETS, namespace=ns, subsystem="call", registry=registry)
        self.packet_loss = Histogram(
            "packet_loss", "Per call, the caller's audio packets lost / expected "
            "(rtp_audio_in_flaw_total / (media packets received + flaws))",
            ["node", "tenant"], unit="ratio", buckets=LOSS_BUCKETS, namespace=ns,
            subsystem="call", registry=registry)

    def observe_quality(self, node: str, tenant: str, q: CallQuality) -> None:
        self.mos.labels(node, tenant).observe(q.mos)
        self.jitter.labels(node, tenant).observe(q.jitter_s)
        self.packet_loss.labels(node, tenant).observe(q.loss_ratio)

    def watch_live_calls(self, live: LiveCalls) -> None:
        """Export ``cccore_calls_in_progress{node,tenant}`` from ``live``, read at scrape time."""
        if self.registry is not None:
            self.registry.register(InProgressCollector(live))


class InProgressCollector(Collector):
    """Calls in progress per node and tenant, counted from the call machine's live state
    at each scrape instead of a gauge moved by +1/-1.

    Why: a call leaves a worker by many paths (hang-up, a step lost to another worker, a node
    lost with its lease, a warm hand-over); a gauge misses a decrement on any path someone
    forgets, and then drifts for ever. Reading the live state cannot drift, and asking it for
    the calls on nodes this worker may still act on makes a failover show at once: the old
    owner's count for the node drops to 0 when it loses the lease, the new owner's rises as it
    resumes the calls.
    """

    NAME = full_name("calls", "in_progress")

    def __init__(self, live: LiveCalls) -> None:
        self._live = live

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without it the registry calls collect() at registration to learn the names.
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for (node, tenant), n in sorted(Tally(self._live()).items()):
            family.add_metric([node, tenant], n)
        yield family

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.NAME, "400 calls this worker runs right now (claimed or resumed, not ended, on "
            "a node it owns or is handing over), by node and tenant", labels=["node", "tenant"])
