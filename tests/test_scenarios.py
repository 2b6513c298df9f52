"""Tests for runtime.scenarios.fixed_batch, the FixedBatch closed loop (short real-time runs;
tolerant bounds for noisy CI). LoadGen's scenarios are tested in test_loadgen.py."""

from __future__ import annotations

import time

import numpy as np
import pytest

from reproscope.runtime.scenarios.fixed_batch import StopRule, median_ci_rel, run_fixed_batch

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


# --- Stop rules -------------------------------------------------------------------------------


def test_stop_rule_validation() -> None:
    with pytest.raises(ValueError):
        StopRule(min_duration_s=0.1, min_queries=0)
    with pytest.raises(ValueError):
        StopRule(min_duration_s=-1.0, min_queries=1)
    with pytest.raises(ValueError):
        StopRule(min_duration_s=0.0, min_queries=1, target_ci_rel=0.0)


def test_median_ci_rel() -> None:
    assert median_ci_rel([5, 5, 5]) == float("inf")  # n < 6: no 95 % interval
    assert median_ci_rel([100] * 50) == 0.0
    rng = np.random.default_rng(0)
    wide = median_ci_rel(list(1000 + rng.normal(0, 100, 20)))
    narrow = median_ci_rel(list(1000 + rng.normal(0, 100, 2000)))
    assert narrow < 0.02 < wide  # the interval shrinks like 1/sqrt(n)


def test_stops_when_the_median_is_known_to_2_percent() -> None:
    rng = np.random.default_rng(1)
    issue = Counter()

    def noisy(n: int) -> None:
        issue(n)
        time.sleep(0.002 * (1 + 0.3 * abs(rng.standard_normal())))

    rule = StopRule(min_duration_s=0.0, min_queries=10, max_duration_s=5.0, target_ci_rel=0.02)
    res = run_fixed_batch(noisy, 1, warmup=0, rule=rule)
    assert res.stopped_by == "median_ci"
    lat = [round(v * 1e6) for v in res.latencies_ms]
    assert median_ci_rel(lat) <= 0.02
    assert res.n_queries > 10


def test_a_too_noisy_run_stops_at_the_cap_and_says_so() -> None:
    rng = np.random.default_rng(2)

    def noisy(_n: int) -> None:
        time.sleep(0.001 * rng.exponential() * 10)

    rule = StopRule(min_duration_s=0.0, min_queries=5, max_duration_s=0.1, target_ci_rel=0.001)
    res = run_fixed_batch(noisy, 1, warmup=0, rule=rule)
    assert res.stopped_by == "max_duration"


def test_stops_on_min_queries_when_later() -> None:
    issue = Counter(sleep_s=0.001)  # duration (20 ms) is met after ~20 queries, long before 60
    res = run_fixed_batch(issue, 1, warmup=3, rule=StopRule(min_duration_s=0.02, min_queries=60))
    assert res.stopped_by == "min_queries"
    assert res.n_queries == 60  # no overshoot when queries bind
    assert 0.02 <= res.duration_s < 0.5
    assert len(issue.calls) == 3 + 60  # warm-up excluded from the record
    assert len(res.latencies_ms) == res.n_queries


def test_fast_issue_many_queries() -> None:
    issue = Counter()
    res = run_fixed_batch(issue, 1, warmup=0, rule=StopRule(min_duration_s=0.0, min_queries=5000))
    assert res.stopped_by == "min_queries" and res.n_queries == 5000
    assert res.duration_s < 1.0


def test_stops_on_min_duration_when_later() -> None:
    issue = Counter(sleep_s=0.001)
    res = run_fixed_batch(issue, 1, warmup=1, rule=StopRule(min_duration_s=0.15, min_queries=5))
    assert res.stopped_by == "min_duration"
    assert res.n_queries >= 5
    assert 0.15 <= res.duration_s < 0.4  # stops promptly after the minimum


def test_max_duration_cap() -> None:
    issue = Counter(sleep_s=0.002)
    rule = StopRule(min_duration_s=0.0, min_queries=10_000, max_duration_s=0.05)
    res = run_fixed_batch(issue, 1, warmup=0, rule=rule)
    assert res.stopped_by == "max_duration"
    assert res.n_queries < 10_000
    assert 0.05 <= res.duration_s < 0.3


# --- Closed-loop scenarios --------------------------------------------------------------------


def test_single_stream_sleeper_latency() -> None:
    issue = Counter(sleep_s=SERVICE_S)
    res = run_fixed_batch(issue, 1, warmup=2, rule=StopRule(min_duration_s=0.1, min_queries=30))
    s = res.summary()
    assert 5.0 <= s["median_ms"] <= 7.0
    assert s["throughput_sps"] == pytest.approx(res.n_queries / res.duration_s)
    assert 0.5 < res.timed_share <= 1.0
    assert res.scenario == "FixedBatch" and res.samples_per_query == 1
    assert issue.calls == [1] * (2 + res.n_queries)
    assert res.warmup_s >= 2 * SERVICE_S


def test_fixed_batch_throughput() -> None:
    issue = Counter(sleep_s=SERVICE_S)
    res = run_fixed_batch(issue, batch_size=8, warmup=1, rule=StopRule(0.1, 20))
    assert res.scenario == "FixedBatch" and res.samples_per_query == 8
    assert set(issue.calls) == {8}
    assert res.throughput_sps == pytest.approx(8 * res.n_queries / res.duration_s)
    assert 8 / 0.008 <= res.throughput_sps <= 8 / SERVICE_S * 1.01  # ~1600 samples/s
