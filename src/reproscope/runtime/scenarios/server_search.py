"""Server: the highest rate LoadGen calls VALID under the latency bound, found by a bounded
search of short LoadGen runs (:mod:`reproscope.runtime.scenarios.loadgen`), then confirmed.

* The search starts from a robust service rate: the median figure of the point's earlier
  rounds where there are two or more, else this process's FixedBatch closed loop at the
  SUT's ``max_batch`` (the median batch once warm), times its workers.
* No trial runs longer than ``timing.server_trial_max_s`` (rates too low to gather early
  stopping's queries in that time are not tried) and the search as a whole stops starting
  trials once ``timing.server_search_budget_s`` would be passed; the row says so
  (``server_search_reason``).
* The figure, ``server_max_qps``, is the completed samples per second LoadGen measured in a
  VALID confirmation run at the rate the search found (``server_target_qps``); an INVALID
  confirmation steps the rate down. Under ``timing_profile: mlperf`` the confirmation run
  takes mlperf.conf's durations; only the search's trials are shortened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.rounds import earlier_figures
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.scenarios.loadgen import (
    base_spec,
    early_stopping_queries,
    is_mlperf,
    library_spec,
    mlperf_conf,
    point_metrics,
    queries_short,
    run_loadgen,
    sample_library,
    steady_ms,
    with_min_queries,
)
from reproscope.runtime.scenarios.loadgen_sut import ServerPolicy

#: A Server trial lasts at least this many latency bounds (see server_min_duration_s).
SERVER_TRIAL_BOUNDS = 10
#: Defaults of timing.server_trial_max_s and timing.server_search_budget_s.
SERVER_TRIAL_MAX_S = 5.0
SERVER_SEARCH_BUDGET_S = 60.0
#: The Server search's cap on rates tried, and on runs of one rate (see queries_short).
SERVER_MAX_TRIALS = 24
SERVER_ATTEMPTS = 3
#: Confirmation runs: the found rate, then each step down by this factor (to 0.61 of it).
CONFIRM_RUNS = 4
CONFIRM_STEP = 0.85


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


def server_trial_spec(
    spec: dict[str, Any], rate: float, min_queries: int, max_s: float | None = None
) -> dict[str, Any]:
    """A Server run at ``rate`` that lasts long enough to expose an overload and can issue
    ``min_queries`` before its time cap; with ``max_s``, never longer than that."""
    lasting = max(spec.get("min_duration_s", 0.0), server_min_duration_s(spec["latency_bound_ms"]))
    if max_s is not None:
        lasting = min(lasting, max_s)
    spec = {**spec, "min_duration_s": lasting}
    spec["max_duration_s"] = max(spec["max_duration_s"], lasting)
    spec = {**with_min_queries(spec, min_queries, rate), "target_qps": rate}
    if max_s is not None:
        spec["max_duration_s"] = min(spec["max_duration_s"], max_s)
    return spec


def lowest_testable_qps(min_queries: int, max_s: float) -> float:
    """The lowest rate at which a trial of at most ``max_s`` gathers ``min_queries``
    (Poisson arrivals: a quarter more time than the mean)."""
    return 1.25 * min_queries / max_s


def find_peak_server_rate(
    trial: Callable[[float], dict[str, Any]],
    start_qps: float,
    steps: int,
    max_trials: int = SERVER_MAX_TRIALS,
    min_qps: float = 0.0,
    budget_s: float | None = None,
    trial_s: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """The highest Server rate LoadGen calls VALID, found by a search that widens its own
    bounds: from ``start_qps`` it doubles while VALID (halves while INVALID, not below
    ``min_qps``) until it has a VALID rate below an INVALID one, then bisects ``steps`` times.
    The answer is always a rate that was run and VALID; ``peak_qps`` is None (with
    ``reason``) when no VALID rate was found.

    With ``budget_s``, no trial starts that could end past it (each may take ``trial_s``);
    the search then answers with the highest VALID rate so far (bracketed or not),
    ``budget_exhausted`` set and ``reason`` saying so.
    """
    if start_qps <= 0:
        raise ValueError(f"start_qps must be > 0, got {start_qps}")
    trials: list[dict[str, Any]] = []
    started = clock()
    low: float | None = None
    high: float | None = None

    def out_of_time() -> bool:
        return budget_s is not None and clock() - started + trial_s > budget_s

    def answer(reason: str | None, exhausted: bool = False, bracketed: bool = True) -> dict:
        return {
            "peak_qps": low if bracketed else None,
            "bracket": [low, high],
            "trials": trials,
            "reason": reason,
            "budget_exhausted": exhausted,
            "search_s": clock() - started,
        }

    def ran_out() -> dict[str, Any]:
        where = f"highest VALID rate so far: {low:.4g} q/s" if low else "no VALID rate found"
        return answer(
            f"search time budget of {budget_s:g} s ran out after {len(trials)} trials; {where}",
            exhausted=True,
        )

    def valid(rate: float) -> bool:
        result = trial(rate)
        trials.append({"target_qps": rate, **result})
        return result["validity"] == "VALID"

    rate = max(start_qps, min_qps)
    while len(trials) < max_trials and (low is None or high is None):
        if out_of_time():
            return ran_out()
        if valid(rate):
            low = rate
            rate = rate * 2 if high is None else rate
        else:
            high = rate
            rate = rate / 2 if low is None else rate
            if low is None and rate < min_qps:
                return answer(f"INVALID at every rate tried, down to {high:.3g} q/s")
    if low is None or high is None:
        side = "VALID" if high is None else "INVALID"
        return answer(f"every rate tried was {side} within {max_trials} trials", bracketed=False)
    for _ in range(steps):
        if len(trials) >= max_trials:
            break
        if out_of_time():
            return ran_out()
        mid = (low + high) / 2
        if valid(mid):
            low = mid
        else:
            high = mid
    return answer(None)


def service_qps(runner: Runner, inputs: np.ndarray, policy: ServerPolicy, warmup: int) -> float:
    """What the SUT serves flat out: its workers, each running full ``max_batch`` batches
    back to back at the median (steady) latency of this process's FixedBatch loop."""
    batch_ms = steady_ms(runner, inputs, policy.max_batch, warmup)
    return policy.workers * policy.max_batch * 1e3 / batch_ms


def server_point_max_s(timing: dict[str, Any]) -> float:
    """The longest a Server point can take: its search budget, then its confirmation runs
    (under the mlperf profile each up to max_duration_s), each with its re-runs."""
    trial_max_s = float(timing.get("server_trial_max_s", SERVER_TRIAL_MAX_S))
    confirm_s = timing["max_duration_s"] if timing.get("profile") == "mlperf" else trial_max_s
    budget_s = float(timing.get("server_search_budget_s", SERVER_SEARCH_BUDGET_S))
    return budget_s + CONFIRM_RUNS * SERVER_ATTEMPTS * max(confirm_s, trial_max_s)


def run(runner: Runner, job: InferenceJob, inputs: np.ndarray) -> dict[str, Any]:
    """One Server point: a bounded search for the peak rate, then a confirmation run at it
    whose completed samples per second are the figure; every run is recorded. LoadGen's
    logs go to job.loadgen_dir, a folder per run."""
    import mlperf_loadgen as lg

    server, timing = job.server or {}, job.timing or {}
    policy = ServerPolicy(
        server.get("workers", 1), server.get("max_batch", 1), server.get("max_wait_ms", 0.0)
    )
    spec = base_spec(lg, runner, job, inputs)
    expected = spec["expected_latency_ms"]
    official = mlperf_conf(lg, job.mlperf_benchmark, "Server")
    if is_mlperf(job) and job.mlperf_benchmark:  # the benchmark's own bound stands
        bound_ms = official.server_target_latency_ns / 1e6
        percentile = official.server_target_latency_percentile
    else:
        bound_ms = server["latency_bound_ms"]
        percentile = server.get("latency_percentile", 0.99)
        spec.update(latency_bound_ms=bound_ms, latency_percentile=percentile)
    library = sample_library(lg, job)
    spec = library_spec(spec, library, lg)
    log_dir = Path(job.loadgen_dir)
    trial_max_s = float(timing.get("server_trial_max_s", SERVER_TRIAL_MAX_S))
    budget_s = float(timing.get("server_search_budget_s", SERVER_SEARCH_BUDGET_S))
    needed = max(spec.get("min_queries", 0), early_stopping_queries(percentile))
    # The search's trials are short whatever the profile: they choose a rate, not report it.
    trial_base = {**spec, "latency_bound_ms": bound_ms, "latency_percentile": percentile}

    def trial(rate: float, folder: str = "qps") -> dict[str, Any]:
        """One rate; a run INVALID only for too few queries for early stopping (its
        latency held) is run again with as many as LoadGen asked for, within the trial
        bound: a rate is INVALID because of its latencies, never because it was measured
        too briefly."""
        trial_spec = server_trial_spec(trial_base, rate, needed, trial_max_s)
        for attempt in range(SERVER_ATTEMPTS):
            trial_dir = log_dir / f"{folder}_{rate:.3f}" / f"attempt{attempt}"
            result = run_loadgen(lg, runner, library, "Server", trial_spec, trial_dir, 1, policy)
            more = queries_short(result)
            wanted = (result["query_count"] or 0) + (more or 0)
            if more is None or rate * trial_max_s < 1.25 * wanted:
                break
            trial_spec = server_trial_spec(trial_base, rate, wanted, trial_max_s)
        return result

    service = service_qps(runner, inputs, policy, timing.get("warmup", 0))
    earlier = earlier_figures(job)  # a disturbed process's own service rate is not robust
    start = float(np.median(earlier)) if len(earlier) >= 2 else service
    floor = lowest_testable_qps(needed, trial_max_s)
    search = find_peak_server_rate(
        trial,
        start,
        server.get("search_steps", 3),
        min_qps=max(start / 32, floor),
        budget_s=budget_s,
        trial_s=trial_max_s,
    )
    confirmations: list[dict[str, Any]] = []
    confirmed = None
    rate = search["peak_qps"]
    for _ in range(CONFIRM_RUNS if rate else 0):
        if is_mlperf(job):  # the reported run takes mlperf.conf's durations and counts
            run_spec = {**spec, "target_qps": rate}
            result = run_loadgen(
                lg, runner, library, "Server", run_spec, log_dir / f"confirm_{rate:.3f}", 1, policy
            )
        else:
            result = trial(rate, folder="confirm")
        confirmations.append({"target_qps": rate, **result})
        if result["validity"] == "VALID":
            confirmed = confirmations[-1]
            break
        rate *= CONFIRM_STEP
    last = confirmed or (confirmations or search["trials"])[-1]
    reason = search["reason"]
    if rate and confirmed is None:
        reason = f"{reason + '; ' if reason else ''}no confirmation run was VALID"
    result = dict(last)
    result.update(
        server_max_qps=confirmed["completed_samples_per_sec"] if confirmed else None,
        # the rate LoadGen was asked for, as user.conf gave it
        server_target_qps=confirmed["settings"]["user_conf"]["target_qps"] if confirmed else None,
        server_search_peak_qps=search["peak_qps"],
        server_bracket_qps=search["bracket"],
        server_search_reason=reason,
        server_search_budget_exhausted=search["budget_exhausted"],
        server_search_s=search["search_s"],
        server_start_qps=start,
        server_start_from=f"median of {len(earlier)} earlier rounds"
        if len(earlier) >= 2
        else f"FixedBatch at max_batch {policy.max_batch}",
        server_service_qps=service,
        server_trial_max_s=trial_max_s,
        server_search_budget_s=budget_s,
        latency_bound_ms=bound_ms,
        server_trials=[
            {k: t.get(k) for k in ("target_qps", "validity", "p99_ms", "invalid_reason", "wall_s")}
            for t in search["trials"] + confirmations
        ],
    )
    return point_metrics(result, job, expected)
