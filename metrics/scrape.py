"""Reading a worker's own ``/metrics`` from the outside: the demo's summary, ``cc-core
loadtest``, the acceptance and chaos runs and the benchmarks all read the same histograms."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable, Sequence

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def samples(url: str, timeout: float = 1.0) -> list[Sample] | None:
    """Every sample the exposition at ``url`` serves; None when it cannot be read (a worker
    not up yet, or gone)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def port_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/metrics"


def buckets(found: Iterable[Sample], histogram: str) -> list[tuple[str, float]]:
    """The cumulative ``(le, count)`` samples of ``histogram`` (its name without
    ``_bucket``), every label set included."""
    name = f"{histogram}_bucket"
    return [(s.labels.get("le", "+Inf"), s.value) for s in found if s.name == name]


def histogram_quantiles(found: Iterable[tuple[str, float]],
                        fractions: Sequence[float]) -> list[float | None]:
    """Quantiles (ms) of a Prometheus histogram from its cumulative ``(le, count)`` bucket
    samples; samples with the same bound (several workers, several label sets) are summed.
    None for each fraction when nothing was observed."""
    summed: dict[float, float] = {}
    for le, value in found:
        bound = float("inf") if le in ("+Inf", "inf") else float(le)
        summed[bound] = summed.get(bound, 0.0) + value
    if not summed or max(summed.values()) == 0:
        return [None for _ in fractions]
    ordered = sorted(summed.items())
    total = ordered[-1][1]

    def q(frac: float) -> float:
        # Linear interpolation inside the bucket, as PromQL's histogram_quantile does.
        rank = frac * total
        prev_bound, prev_count = 0.0, 0.0
        for bound, count in ordered:
            if count >= rank:
                if bound == float("inf"):
                    return prev_bound * 1000
                span = count - prev_count
                inside = (rank - prev_count) / span if span else 1.0
                return (prev_bound + (bound - prev_bound) * inside) * 1000
            prev_bound, prev_count = bound, count
        return prev_bound * 1000

    return [q(f) for f in fractions]
