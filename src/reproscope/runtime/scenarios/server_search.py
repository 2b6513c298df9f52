"""Server: the highest rate LoadGen calls VALID under the latency bound, found by a search
of LoadGen runs (:mod:`reproscope.runtime.scenarios.loadgen`), one or more per rate tried."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.scenarios.loadgen import (
    base_spec,
    early_stopping_queries,
    point_metrics,
    queries_short,
    run_loadgen,
    with_min_queries,
)
from reproscope.runtime.scenarios.loadgen_sut import SampleLibrary, ServerPolicy

#: A Server trial lasts at least this many latency bounds (see server_min_duration_s).
SERVER_TRIAL_BOUNDS = 10


def server_min_duration_s(latency_bound_ms: float) -> float:
    """The shortest Server trial that can call an unsustainable rate INVALID.

    Arrivals a share ``e`` above what the SUT sustains build a queue whose wait grows as
    ``e * t``; the p90 fails once the last tenth of the queries waits beyond the bound
    ``B``, i.e. when the trial lasts ``T > B / (0.9 e)``. Ten bounds catch e >= 11 %, finer
    than the search's resolution (12.5 % with 3 bisection steps); a shorter trial passes a
    burst that no steady load could keep (at 0.3 s and a 100 ms bound, 37 % above the SUT's
    throughput).
    """
    return SERVER_TRIAL_BOUNDS * latency_bound_ms / 1e3


def server_trial_spec(spec: dict[str, Any], rate: float, min_queries: int) -> dict[str, Any]:
    """A Server run at ``rate`` that lasts long enough to expose an overload and can issue
    ``min_queries`` before its time cap."""
    lasting = max(spec["min_duration_s"], server_min_duration_s(spec["latency_bound_ms"]))
    spec = {**spec, "min_duration_s": lasting}
    spec["max_duration_s"] = max(spec["max_duration_s"], lasting)
    return {**with_min_queries(spec, min_queries, rate), "target_qps": rate}


#: The Server search's cap on rates tried, and on runs of one rate (see queries_short).
SERVER_MAX_TRIALS = 24
SERVER_ATTEMPTS = 3


def find_peak_server_rate(
    trial: Callable[[float], dict[str, Any]],
    start_qps: float,
    steps: int,
    max_trials: int = SERVER_MAX_TRIALS,
    min_qps: float = 0.0,
) -> dict[str, Any]:
    """The highest Server rate LoadGen calls VALID, found by a search that widens its own
    bounds: from ``start_qps`` it doubles while VALID (halves while INVALID, not below
    ``min_qps``) until it has a VALID rate below an INVALID one, then bisects ``steps`` times.
    The answer is always a rate that was run and VALID, with a tested INVALID rate above it:
    never a preset bound. ``peak_qps`` is None (with ``reason``) when no bracket was found.
    """
    if start_qps <= 0:
        raise ValueError(f"start_qps must be > 0, got {start_qps}")
    trials: list[dict[str, Any]] = []

    def valid(rate: float) -> bool:
        result = trial(rate)
        trials.append({"target_qps": rate, **result})
        return result["validity"] == "VALID"

    low: float | None = None
    high: float | None = None
    rate = start_qps
    while len(trials) < max_trials and (low is None or high is None):
        if valid(rate):
            low = rate
            rate = rate * 2 if high is None else rate
        else:
            high = rate
            rate = rate / 2 if low is None else rate
            if low is None and rate < min_qps:
                return {
                    "peak_qps": None,
                    "bracket": [None, high],
                    "trials": trials,
                    "reason": f"INVALID at every rate tried, down to {high:.3g} q/s",
                }
    if low is None or high is None:
        side = "VALID" if high is None else "INVALID"
        return {
            "peak_qps": None,
            "bracket": [low, high],
            "trials": trials,
            "reason": f"every rate tried was {side} within {max_trials} trials",
        }
    for _ in range(steps):
        if len(trials) >= max_trials:
            break
        mid = (low + high) / 2
        if valid(mid):
            low = mid
        else:
            high = mid
    return {"peak_qps": low, "bracket": [low, high], "trials": trials, "reason": None}


def run(runner: Runner, job: InferenceJob, inputs: np.ndarray) -> dict[str, Any]:
    """One Server point: the search's result at its peak rate (the last VALID run of it),
    with every rate tried; LoadGen's logs go to job.loadgen_dir, a folder per run."""
    import mlperf_loadgen as lg

    server = job.server
    policy = ServerPolicy(
        server.get("workers", 1), server.get("max_batch", 1), server.get("max_wait_ms", 0.0)
    )
    spec = base_spec(runner, job, inputs)
    expected = spec["expected_latency_ms"]
    spec["latency_bound_ms"] = server["latency_bound_ms"]
    spec["latency_percentile"] = server.get("latency_percentile", 0.99)
    library = SampleLibrary(inputs)
    log_dir = Path(job.loadgen_dir)

    def trial(rate: float) -> dict[str, Any]:
        """One rate; a run INVALID only for too few queries for early stopping (its
        latency held) is run again with as many as LoadGen asked for: a rate is INVALID
        because of its latencies, never because it was measured too briefly."""
        needed = early_stopping_queries(spec["latency_percentile"])
        trial_spec = server_trial_spec(spec, rate, max(spec["min_queries"], needed))
        for attempt in range(SERVER_ATTEMPTS):
            trial_dir = log_dir / f"qps_{rate:.3f}" / f"attempt{attempt}"
            result = run_loadgen(lg, runner, library, "Server", trial_spec, trial_dir, 1, policy)
            more = queries_short(result)
            if more is None:
                break
            trial_spec = server_trial_spec(spec, rate, (result["query_count"] or 0) + more)
        return result

    # The measured service rate (``expected`` is half the latency): the peak, with dynamic
    # batching and a latency bound, is usually within a factor 2 of it, so one doubling or
    # halving brackets it. Half of it cost one more trial, at the slowest rate, whenever
    # the peak was above the service rate.
    start_qps = policy.workers * 1e3 / (2 * expected)
    search = find_peak_server_rate(
        trial, start_qps, server.get("search_steps", 3), min_qps=start_qps / 32
    )
    valid = [t for t in search["trials"] if t["target_qps"] == search["peak_qps"]]
    result = dict(valid[-1] if valid else search["trials"][-1])
    result.update(
        server_max_qps=search["peak_qps"],
        server_bracket_qps=search["bracket"],
        server_search_reason=search["reason"],
        latency_bound_ms=server["latency_bound_ms"],
        server_trials=[
            {k: t.get(k) for k in ("target_qps", "validity", "p99_ms", "invalid_reason")}
            for t in search["trials"]
        ],
    )
    return point_metrics(result, job, expected)
