"""Tests for reproscope.scenarios (short real-time runs; tolerant bounds for noisy CI)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from reproscope import scenarios
from reproscope.scenarios import (
    ScenarioResult,
    StopRule,
    find_max_server_rate,
    poisson_arrivals,
    run_offline,
    run_server,
    run_single_stream,
)
from reproscope.stats import summarize

SERVICE_S = 0.005


class Counter:
    """Fake issue() that records its calls and optionally sleeps."""

    def __init__(self, sleep_s: float = 0.0) -> None:
        self.sleep_s = sleep_s
        self.calls: list[int] = []

    def __call__(self, n_samples: int) -> None:
        self.calls.append(n_samples)
        if self.sleep_s:
            time.sleep(self.sleep_s)


# --- Poisson arrivals -------------------------------------------------------------------------


def test_poisson_same_seed_same_result() -> None:
    a = poisson_arrivals(100.0, 1000, seed=7)
    b = poisson_arrivals(100.0, 1000, seed=7)
    c = poisson_arrivals(100.0, 1000, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (1000,) and a[0] > 0 and np.all(np.diff(a) > 0)


def test_poisson_gap_statistics() -> None:
    rate = 250.0
    gaps = np.diff(np.concatenate([[0.0], poisson_arrivals(rate, 20000, seed=1)]))
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.05)
    assert gaps.std(ddof=1) / gaps.mean() == pytest.approx(1.0, abs=0.05)


def test_server_arrival_stream_matches_poisson_arrivals() -> None:
    n = scenarios._ARRIVAL_CHUNK + 100  # crosses a chunk boundary
    stream = np.fromiter(itertools.islice(scenarios._arrival_stream(50.0, 3), n), float)
    np.testing.assert_allclose(stream, poisson_arrivals(50.0, n, 3), rtol=1e-12)


# --- Stop rules -------------------------------------------------------------------------------


def test_stop_rule_validation() -> None:
    with pytest.raises(ValueError):
        StopRule(min_duration_s=0.1, min_queries=0)
    with pytest.raises(ValueError):
        StopRule(min_duration_s=-1.0, min_queries=1)


def test_stops_on_min_queries_when_later() -> None:
    issue = Counter(sleep_s=0.001)  # duration (20 ms) is met after ~20 queries, long before 60
    res = run_single_stream(issue, warmup=3, rule=StopRule(min_duration_s=0.02, min_queries=60))
    assert res.stopped_by == "min_queries"
    assert res.n_queries == 60  # no overshoot when queries bind
    assert 0.02 <= res.duration_s < 0.5
    assert len(issue.calls) == 3 + 60  # warm-up excluded from the record
    assert len(res.latencies_ms) == res.n_queries


def test_fast_issue_many_queries() -> None:
    issue = Counter()
    res = run_single_stream(issue, warmup=0, rule=StopRule(min_duration_s=0.0, min_queries=5000))
    assert res.stopped_by == "min_queries" and res.n_queries == 5000
    assert res.duration_s < 1.0


def test_stops_on_min_duration_when_later() -> None:
    issue = Counter(sleep_s=0.001)
    res = run_single_stream(issue, warmup=1, rule=StopRule(min_duration_s=0.15, min_queries=5))
    assert res.stopped_by == "min_duration"
    assert res.n_queries >= 5
    assert 0.15 <= res.duration_s < 0.4  # stops promptly after the minimum


def test_max_duration_cap() -> None:
    issue = Counter(sleep_s=0.002)
    rule = StopRule(min_duration_s=0.0, min_queries=10_000, max_duration_s=0.05)
    res = run_single_stream(issue, warmup=0, rule=rule)
    assert res.stopped_by == "max_duration"
    assert res.n_queries < 10_000
    assert 0.05 <= res.duration_s < 0.3


# --- Closed-loop scenarios --------------------------------------------------------------------


def test_single_stream_sleeper_latency() -> None:
    issue = Counter(sleep_s=SERVICE_S)
    res = run_single_stream(issue, warmup=2, rule=StopRule(min_duration_s=0.1, min_queries=30))
    s = res.summary()
    assert 5.0 <= s["median_ms"] <= 7.0
    assert s["throughput_sps"] == pytest.approx(res.n_queries / res.duration_s)
    assert 0.5 < res.timed_share <= 1.0
    assert res.scenario == "single_stream" and res.samples_per_query == 1
    assert issue.calls == [1] * (2 + res.n_queries)
    assert res.warmup_s >= 2 * SERVICE_S


def test_offline_throughput() -> None:
    issue = Counter(sleep_s=SERVICE_S)
    res = run_offline(issue, batch_size=8, warmup=1, rule=StopRule(0.1, 20))
    assert res.scenario == "offline" and res.samples_per_query == 8
    assert set(issue.calls) == {8}
    assert res.throughput_sps == pytest.approx(8 * res.n_queries / res.duration_s)
    assert 8 / 0.008 <= res.throughput_sps <= 8 / SERVICE_S * 1.01  # ~1600 samples/s


# --- Server scenario --------------------------------------------------------------------------


def test_server_low_rate_latency_is_service_time() -> None:
    issue = Counter(sleep_s=SERVICE_S)
    res = run_server(issue, rate_qps=30.0, warmup=1, rule=StopRule(0.3, 15), seed=0)
    s = res.summary()
    assert res.scenario == "server" and res.target_qps == 30.0
    assert 5.0 <= s["median_ms"] <= 8.0
    assert res.timed_share < 0.5  # mostly idle, waiting for arrivals
    assert res.duration_s >= 0.3


def test_server_above_capacity_latency_grows() -> None:
    issue = Counter(sleep_s=SERVICE_S)
    res = run_server(issue, rate_qps=600.0, warmup=0, rule=StopRule(0.25, 40), seed=0)
    lat = np.asarray(res.latencies_ms)
    q = len(lat) // 4
    assert lat[-q:].mean() > lat[:q].mean() + 10.0  # queue keeps building
    assert lat.max() > 4 * SERVICE_S * 1e3
    assert res.throughput_sps < 600.0 / 2  # served well below the offered rate
    assert res.extra["mean_queue_ms"] > 5.0


def test_find_max_server_rate_on_sleeper() -> None:
    issue = Counter(sleep_s=SERVICE_S)
    rule = StopRule(min_duration_s=0.25, min_queries=30)
    rate, results = find_max_server_rate(
        issue,
        latency_bound_ms=20.0,
        warmup=1,
        rule=rule,
        seed=1,
        low_qps=20.0,
        high_qps=400.0,
        iterations=4,
    )
    assert 50.0 <= rate <= 200.0
    assert len(results) == 2 + 4
    assert all(isinstance(r, ScenarioResult) for r in results)
    passing = [r.target_qps for r in results if summarize(r.latencies_ms)["p99_ms"] <= 20.0]
    assert rate == max(passing)


def test_find_max_server_rate_low_fails() -> None:
    issue = Counter(sleep_s=SERVICE_S)
    rate, results = find_max_server_rate(
        issue, 1.0, warmup=0, rule=StopRule(0.0, 3), seed=0, low_qps=10.0, high_qps=20.0
    )
    assert rate == 0.0 and len(results) == 1
