"""The FixedBatch closed loop: one batch of N at a time, timed per batch.

The MLPerf scenarios (SingleStream, MultiStream, Server, Offline) are driven by MLPerf LoadGen
(:mod:`reproscope.runtime.scenarios.loadgen`). This loop drives a caller-supplied
``issue(n_samples) -> None`` that runs ONE batch synchronously, including any device
synchronisation; the callable picks its own inputs and its return value is ignored.

All timing uses :func:`time.perf_counter_ns` (monotonic, high resolution). Warm-up queries run
first, back to back, and are never recorded. The timed phase then runs until a :class:`StopRule`
is satisfied (both ``min_duration_s`` and ``min_queries``, and, when ``target_ci_rel`` is set, the
95 % confidence interval of the median within +-``target_ci_rel`` of it) or its ``max_duration_s``
cap is hit; ``stopped_by`` says which. Conditions are checked after each completed query, so a
run overshoots by at most one query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.stats import median_ci_order_stats, summarize
from reproscope.runtime.tensorize import batch_of

#: ``issue(n_samples)`` runs one query synchronously.
IssueFn = Callable[[int], object]

_NS = 1_000_000_000
STOPPED_BY_MIN_QUERIES = "min_queries"
STOPPED_BY_MIN_DURATION = "min_duration"
STOPPED_BY_MAX_DURATION = "max_duration"
STOPPED_BY_CI = "median_ci"


@dataclass
class StopRule:
    """Run until BOTH ``min_duration_s`` and ``min_queries`` are met (and, with
    ``target_ci_rel``, the median's 95 % CI is within +-``target_ci_rel`` of the median), or
    ``max_duration_s`` hits. Durations count from the start of the timed phase (after warm-up).
    """

    min_duration_s: float
    min_queries: int
    max_duration_s: float | None = None
    target_ci_rel: float | None = None

    def __post_init__(self) -> None:
        if self.min_duration_s < 0:
            raise ValueError(f"min_duration_s must be >= 0, got {self.min_duration_s}")
        if self.min_queries < 1:
            raise ValueError(f"min_queries must be >= 1, got {self.min_queries}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ValueError(f"max_duration_s must be > 0 or None, got {self.max_duration_s}")
        if self.target_ci_rel is not None and self.target_ci_rel <= 0:
            raise ValueError(f"target_ci_rel must be > 0 or None, got {self.target_ci_rel}")


@dataclass
class ScenarioResult:
    """Outcome of one scenario run; latencies in ms, durations in s."""

    scenario: str
    latencies_ms: list[float]
    n_queries: int
    duration_s: float
    samples_per_query: int
    throughput_sps: float
    stopped_by: str
    timed_share: float
    warmup_s: float

    def summary(self) -> dict[str, float | int | bool]:
        """:func:`reproscope.runtime.stats.summarize` of the latencies plus throughput figures."""
        out: dict[str, float | int | bool] = dict(summarize(self.latencies_ms))
        out["throughput_sps"] = self.throughput_sps
        out["queries_per_s"] = self.n_queries / self.duration_s if self.duration_s > 0 else 0.0
        return out


def median_ci_rel(latencies: list[int]) -> float:
    """Half-width of the median's 95 % order-statistic CI relative to the median (inf if n < 6)."""
    order = median_ci_order_stats(len(latencies))
    if order is None:
        return math.inf
    j, k = order
    mid = (len(latencies) - 1) // 2
    xs = np.partition(np.asarray(latencies), sorted({j - 1, mid, k - 1}))
    median = float(xs[mid])
    return max(median - xs[j - 1], xs[k - 1] - median) / median if median > 0 else math.inf


class _StopTracker:
    """Evaluates a :class:`StopRule` after each completed query."""

    def __init__(self, rule: StopRule, t0_ns: int) -> None:
        self.rule = rule
        self.t0_ns = t0_ns
        self.min_ns = int(rule.min_duration_s * _NS)
        self.max_ns = None if rule.max_duration_s is None else int(rule.max_duration_s * _NS)
        self.duration_met_at_query: int | None = None
        self.next_ci_check = 0
        self.stopped_by = ""

    def done(self, latencies: list[int], now_ns: int) -> bool:
        n_done = len(latencies)
        elapsed = now_ns - self.t0_ns
        if self.duration_met_at_query is None and elapsed >= self.min_ns:
            self.duration_met_at_query = n_done
        if self.duration_met_at_query is not None and n_done >= self.rule.min_queries:
            if self.rule.target_ci_rel is None:
                # The binding condition is whichever was satisfied last.
                met_earlier = self.duration_met_at_query < n_done
                self.stopped_by = STOPPED_BY_MIN_QUERIES if met_earlier else STOPPED_BY_MIN_DURATION
                return True
            if n_done >= self.next_ci_check:
                self.next_ci_check = n_done + max(1, n_done // 20)  # O(n) check, amortised
                if median_ci_rel(latencies) <= self.rule.target_ci_rel:
                    self.stopped_by = STOPPED_BY_CI
                    return True
        if self.max_ns is not None and elapsed >= self.max_ns:
            self.stopped_by = STOPPED_BY_MAX_DURATION
            return True
        return False


def _warmup(issue: IssueFn, n_samples: int, warmup: int) -> tuple[int, int]:
    """Run ``warmup`` untimed queries; return (start_ns, end_ns)."""
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    start = time.perf_counter_ns()
    for _ in range(warmup):
        issue(n_samples)
    return start, time.perf_counter_ns()


def _closed_loop(
    scenario: str, issue: IssueFn, n_samples: int, warmup: int, rule: StopRule
) -> ScenarioResult:
    """Issue queries back to back until the stop rule is satisfied."""
    w_start, t0 = _warmup(issue, n_samples, warmup)
    tracker = _StopTracker(rule, t0)
    latencies_ns: list[int] = []
    clock = time.perf_counter_ns
    start = clock()
    while True:
        issue(n_samples)
        end = clock()
        latencies_ns.append(end - start)
        if tracker.done(latencies_ns, end):
            break
        start = clock()
    t_end = end
    n = len(latencies_ns)
    duration_s = (t_end - t0) / _NS
    wall_ns = t_end - w_start
    return ScenarioResult(
        scenario=scenario,
        latencies_ms=[v / 1e6 for v in latencies_ns],
        n_queries=n,
        duration_s=duration_s,
        samples_per_query=n_samples,
        throughput_sps=n_samples * n / duration_s if duration_s > 0 else float("inf"),
        stopped_by=tracker.stopped_by,
        timed_share=sum(latencies_ns) / wall_ns if wall_ns > 0 else 1.0,
        warmup_s=(t0 - w_start) / _NS,
    )


def run_fixed_batch(issue: IssueFn, batch_size: int, warmup: int, rule: StopRule) -> ScenarioResult:
    """FixedBatch: one batch of ``batch_size`` at a time, closed loop (the seed paper's
    Figure 1); ``throughput_sps = batch_size * n / duration_s``. Not MLPerf Offline, which
    LoadGen drives (:mod:`reproscope.runtime.scenarios.loadgen`)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return _closed_loop("FixedBatch", issue, batch_size, warmup, rule)


def stop_rule(timing: dict[str, Any]) -> StopRule:
    return StopRule(
        timing["min_duration_s"],
        timing["min_queries"],
        timing["max_duration_s"],
        timing.get("target_ci_rel"),
    )


def run(runner: Runner, job: InferenceJob, inputs: np.ndarray) -> dict[str, Any]:
    """One FixedBatch point: the runner on one batch of job.batch_size at a time, closed
    loop; per-batch latency statistics."""
    timing = job.timing
    batch = batch_of(inputs, job.batch_size)
    result = run_fixed_batch(
        lambda _n: runner.run(batch), job.batch_size, timing["warmup"], stop_rule(timing)
    )
    return {
        **summarize(result.latencies_ms),
        "n_iterations": result.n_queries,
        "throughput_ips": result.throughput_sps,
        "duration_s": result.duration_s,
        "stopped_by": result.stopped_by,
        "timed_share": result.timed_share,
        "warmup_s": result.warmup_s,
        "latencies_ms": [round(x, 6) for x in result.latencies_ms],
    }
