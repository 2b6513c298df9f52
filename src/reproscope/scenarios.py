"""MLPerf-Inference-style load generators (single-stream, offline, server).

Every scenario drives a caller-supplied ``issue(n_samples) -> None`` that runs ONE query
synchronously, including any device synchronisation, and returns when its results are ready.
The argument is the number of samples in that query: 1 for single-stream and server,
``batch_size`` for offline; the callable picks its own inputs. Its return value is ignored.

All timing uses :func:`time.perf_counter_ns` (monotonic, high resolution). Warm-up queries run
first, back to back, and are never recorded. The timed phase then runs until a :class:`StopRule`
is satisfied (both ``min_duration_s`` and ``min_queries``) or its ``max_duration_s`` safety cap is
hit. Conditions are checked after each completed query, so a run overshoots by at most one query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from reproscope.stats import summarize

#: ``issue(n_samples)`` runs one query synchronously.
IssueFn = Callable[[int], object]

_NS = 1_000_000_000
#: The server issuer sleeps until this close to an arrival, then spins (sleep overshoot on Linux
#: is typically 50-100 us, and oversleeping would be charged to the query's latency).
_SPIN_NS = 500_000
#: Arrival offsets are drawn lazily in chunks of this many gaps.
_ARRIVAL_CHUNK = 4096

STOPPED_BY_MIN_QUERIES = "min_queries"
STOPPED_BY_MIN_DURATION = "min_duration"
STOPPED_BY_MAX_DURATION = "max_duration"


@dataclass
class StopRule:
    """Run until BOTH ``min_duration_s`` and ``min_queries`` are met, or ``max_duration_s`` hits.

    Durations are measured from the start of the timed phase (after warm-up).
    """

    min_duration_s: float
    min_queries: int
    max_duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.min_duration_s < 0:
            raise ValueError(f"min_duration_s must be >= 0, got {self.min_duration_s}")
        if self.min_queries < 1:
            raise ValueError(f"min_queries must be >= 1, got {self.min_queries}")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ValueError(f"max_duration_s must be > 0 or None, got {self.max_duration_s}")


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
    target_qps: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int | bool]:
        """:func:`reproscope.stats.summarize` of the latencies plus throughput figures."""
        out: dict[str, float | int | bool] = dict(summarize(self.latencies_ms))
        out["throughput_sps"] = self.throughput_sps
        out["queries_per_s"] = self.n_queries / self.duration_s if self.duration_s > 0 else 0.0
        if self.target_qps is not None:
            out["target_qps"] = self.target_qps
        return out


class _StopTracker:
    """Evaluates a :class:`StopRule` after each completed query."""

    def __init__(self, rule: StopRule, t0_ns: int) -> None:
        self.rule = rule
        self.t0_ns = t0_ns
        self.min_ns = int(rule.min_duration_s * _NS)
        self.max_ns = None if rule.max_duration_s is None else int(rule.max_duration_s * _NS)
        self.duration_met_at_query: int | None = None
        self.stopped_by = ""

    def done(self, n_done: int, now_ns: int) -> bool:
        elapsed = now_ns - self.t0_ns
        if self.duration_met_at_query is None and elapsed >= self.min_ns:
            self.duration_met_at_query = n_done
        if self.duration_met_at_query is not None and n_done >= self.rule.min_queries:
            # The binding condition is whichever was satisfied last.
            met_earlier = self.duration_met_at_query < n_done
            self.stopped_by = STOPPED_BY_MIN_QUERIES if met_earlier else STOPPED_BY_MIN_DURATION
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
        if tracker.done(len(latencies_ns), end):
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


def run_single_stream(issue: IssueFn, warmup: int, rule: StopRule) -> ScenarioResult:
    """One query (of one sample) at a time; per-query latency in ms."""
    return _closed_loop("single_stream", issue, 1, warmup, rule)


def run_offline(issue: IssueFn, batch_size: int, warmup: int, rule: StopRule) -> ScenarioResult:
    """Back-to-back batches; ``throughput_sps = batch_size * n / duration_s``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return _closed_loop("offline", issue, batch_size, warmup, rule)


def _arrival_stream(rate_qps: float, seed: int) -> Iterator[float]:
    """Endless Poisson arrival offsets (s); matches ``poisson_arrivals`` up to float rounding."""
    rng = np.random.default_rng(seed)
    last = 0.0
    while True:
        offsets = last + np.cumsum(rng.exponential(1.0 / rate_qps, _ARRIVAL_CHUNK))
        last = float(offsets[-1])
        yield from offsets.tolist()


def poisson_arrivals(rate_qps: float, n: int, seed: int) -> np.ndarray:
    """Arrival offsets in seconds: cumulative sums of Exponential(1/rate) gaps (seeded)."""
    if rate_qps <= 0:
        raise ValueError(f"rate_qps must be > 0, got {rate_qps}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0 / rate_qps, n))


def _sleep_until(target_ns: int) -> None:
    """Sleep coarsely, then spin, until ``perf_counter_ns() >= target_ns``."""
    clock = time.perf_counter_ns
    remaining = target_ns - clock()
    if remaining > _SPIN_NS:
        time.sleep((remaining - _SPIN_NS) / _NS)
    while clock() < target_ns:
        pass


def run_server(
    issue: IssueFn, rate_qps: float, warmup: int, rule: StopRule, seed: int
) -> ScenarioResult:
    """Single worker serving single-sample queries that arrive at seeded Poisson times.

    Latency is completion time minus *scheduled* arrival time, so queueing delay is included.
    If the worker is idle it waits for the next arrival; if it is behind, it issues at once.
    ``extra`` holds ``mean_queue_ms`` (mean wait between scheduled arrival and issue).
    """
    if rate_qps <= 0:
        raise ValueError(f"rate_qps must be > 0, got {rate_qps}")
    w_start, warm_end = _warmup(issue, 1, warmup)
    arrivals = _arrival_stream(rate_qps, seed)
    clock = time.perf_counter_ns
    t0 = clock()
    tracker = _StopTracker(rule, t0)
    latencies_ns: list[int] = []
    busy_ns = 0
    queue_ns = 0
    for offset_s in arrivals:
        arrival = t0 + int(offset_s * _NS)
        _sleep_until(arrival)
        start = clock()
        issue(1)
        end = clock()
        busy_ns += end - start
        queue_ns += start - arrival
        latencies_ns.append(end - arrival)
        if tracker.done(len(latencies_ns), end):
            break
    t_end = end
    n = len(latencies_ns)
    duration_s = (t_end - t0) / _NS
    wall_ns = t_end - w_start
    return ScenarioResult(
        scenario="server",
        latencies_ms=[v / 1e6 for v in latencies_ns],
        n_queries=n,
        duration_s=duration_s,
        samples_per_query=1,
        throughput_sps=n / duration_s if duration_s > 0 else float("inf"),
        stopped_by=tracker.stopped_by,
        timed_share=busy_ns / wall_ns if wall_ns > 0 else 1.0,
        warmup_s=(warm_end - w_start) / _NS,
        target_qps=float(rate_qps),
        extra={"mean_queue_ms": queue_ns / n / 1e6},
    )


def find_max_server_rate(
    issue: IssueFn,
    latency_bound_ms: float,
    warmup: int,
    rule: StopRule,
    seed: int,
    low_qps: float,
    high_qps: float,
    iterations: int = 6,
) -> tuple[float, list[ScenarioResult]]:
    """Bisect for the highest Poisson rate whose p99 latency is ``<= latency_bound_ms``.

    ``low_qps`` is tried first (0.0 is returned if it already fails), then ``high_qps`` (returned
    if it passes), then ``iterations`` bisection steps. Every trial reuses ``seed`` (common random
    numbers). Returns the best passing rate and all trial results in the order they ran.
    """
    if not 0 < low_qps < high_qps:
        raise ValueError(f"need 0 < low_qps < high_qps, got {low_qps}, {high_qps}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    results: list[ScenarioResult] = []

    def passes(rate: float) -> bool:
        res = run_server(issue, rate, warmup, rule, seed)
        results.append(res)
        return summarize(res.latencies_ms)["p99_ms"] <= latency_bound_ms

    if not passes(low_qps):
        return 0.0, results
    if passes(high_qps):
        return float(high_qps), results
    lo, hi = float(low_qps), float(high_qps)
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo, results
