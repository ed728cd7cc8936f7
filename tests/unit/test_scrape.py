"""Reading the workers' histograms from outside (demo summary, loadtest, acceptance, chaos,
benchmarks): quantiles interpolated inside a bucket as PromQL does, workers summed."""

from __future__ import annotations

from cc_core.redis_server import free_port
from metrics.scrape import histogram_quantiles, port_url, samples


def test_quantiles_interpolate_inside_the_bucket_and_sum_the_workers() -> None:
    # Two workers' cumulative buckets: 50 calls under 1 ms, 50 more under 10 ms, in all.
    worker = [("0.001", 25.0), ("0.01", 50.0), ("+Inf", 50.0)]
    p50, p99 = histogram_quantiles(worker + worker, (0.5, 0.99))
    assert p50 == 1.0                        # rank 50: the top of the first bucket
    assert abs(p99 - 9.82) < 1e-9            # rank 99: 49/50 of the way from 1 to 10 ms


def test_nothing_observed_gives_no_quantile_and_the_overflow_bucket_its_lower_bound() -> None:
    assert histogram_quantiles([("0.001", 0.0), ("+Inf", 0.0)], (0.5,)) == [None]
    assert histogram_quantiles([("0.001", 1.0), ("+Inf", 10.0)], (0.99,)) == [1.0]


def test_a_worker_that_does_not_answer_gives_none() -> None:
    assert samples(port_url(free_port()), timeout=0.5) is None
