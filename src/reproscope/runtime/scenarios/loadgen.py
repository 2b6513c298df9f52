"""SingleStream, MultiStream and Offline, driven by MLPerf LoadGen through the SUT and QSL
of :mod:`reproscope.runtime.scenarios.loadgen_sut`; what every LoadGen scenario shares
(Server's rate search, :mod:`reproscope.runtime.scenarios.server_search`, runs on it).

Env-side: imports only the standard library, numpy and ``mlperf_loadgen`` (pinned in every
framework environment). LoadGen issues the queries, times them, applies its early-stopping
rule and writes its logs (``mlperf_log_summary.txt``, ``mlperf_log_detail.txt`` and, in
accuracy mode, ``mlperf_log_accuracy.json``) into the job's log directory; this module reads
its verdict back from the detail log, never re-deriving it.

In every scenario LoadGen's log IO thread runs at SCHED_IDLE (``loadgen_log_thread`` in
``sut``; see :func:`demote_log_thread`): waking every 10 ms at normal priority it preempted
the framework's threads and made PyTorch at batch 1 measure 0.8 % slower under LoadGen
(10 fresh processes, interleaved, 95 % CI -0.3..+1.9 %).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.scenarios.loadgen_sut import RunnerSUT, SampleLibrary, ServerPolicy
from reproscope.runtime.tensorize import batch_of

LOADGEN_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MULTI_STREAM_SAMPLES = 8  # MLPerf's samples per MultiStream query


def thread_ids() -> set[int]:
    """Native ids of this process's threads (empty where /proc is absent)."""
    try:
        return {int(tid) for tid in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def demote_log_thread(before: set[int]) -> str:
    """Put LoadGen's log IO thread at SCHED_IDLE and say what was done.

    Called from LoadGen's first QSL load, before its timed window: the IO thread is then the
    one thread started since ``before`` (taken before StartTest) other than the caller.
    It wakes every 10 ms (``kLogPollPeriod``, fixed in LoadGen) and at normal priority each
    wake preempts a framework thread and stalls its parallel region; at SCHED_IDLE it runs
    only on a core nobody else wants. It only serialises logs, so timing is unaffected:
    LoadGen timestamps queries in the issuing and completing threads.
    """
    if not hasattr(os, "SCHED_IDLE"):
        return "normal priority: this OS has no SCHED_IDLE"
    started = thread_ids() - before - {threading.get_native_id()}
    if len(started) != 1:
        return f"normal priority: {len(started)} threads started with the test, expected 1"
    try:
        os.sched_setscheduler(started.pop(), os.SCHED_IDLE, os.sched_param(0))
    except OSError as exc:
        return f"normal priority: sched_setscheduler failed ({exc.strerror})"
    return "SCHED_IDLE"


def test_settings(lg: Any, scenario: str, spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """LoadGen TestSettings from a plain spec; returns them and what was set (for the record)."""
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = (
        lg.TestMode.AccuracyOnly if spec.get("accuracy") else lg.TestMode.PerformanceOnly
    )
    chosen: dict[str, Any] = {
        "min_duration_ms": int(spec["min_duration_s"] * 1000),
        "max_duration_ms": int(spec["max_duration_s"] * 1000),
        "min_query_count": int(spec["min_queries"]),
    }
    expected_ns = max(1, int(spec["expected_latency_ms"] * 1e6))
    if scenario == "SingleStream":
        chosen["single_stream_expected_latency_ns"] = expected_ns
    elif scenario == "MultiStream":
        chosen["multi_stream_expected_latency_ns"] = expected_ns
        chosen["multi_stream_samples_per_query"] = int(spec.get("samples_per_query", 8))
    elif scenario == "Server":
        chosen["server_target_qps"] = float(spec["target_qps"])
        chosen["server_target_latency_ns"] = int(spec["latency_bound_ms"] * 1e6)
        chosen["server_target_latency_percentile"] = float(spec.get("latency_percentile", 0.99))
    else:
        chosen["offline_expected_qps"] = float(spec["expected_qps"])
        chosen["min_query_count"] = 1  # Offline is one query
    for key in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"):
        if key in spec:
            chosen[key] = int(spec[key])
    for key, value in chosen.items():
        setattr(settings, key, value)
    return settings, {"scenario": scenario, "mode": str(settings.mode), **chosen}


def read_detail_log(path: Path) -> dict[str, Any]:
    """The key/value records of ``mlperf_log_detail.txt`` (the last value of a repeated key)."""
    values: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG"):
            record = json.loads(line[len(":::MLLOG") :])
            values[record["key"]] = record["value"]
    return values


def loadgen_result(detail: dict[str, Any]) -> dict[str, Any]:
    """LoadGen's verdict and figures from its detail log: validity and why, early-stopping
    percentile estimates, the latency percentiles it measured and every effective setting."""
    ns = 1e6
    validity = detail.get("result_validity")
    reason = detail.get("result_invalid_reason", "").strip()
    if validity != "VALID" and not detail.get("early_stopping_met", True):
        # LoadGen leaves early stopping out of result_invalid_reason; its own words are here.
        reason = f"{reason} early stopping not met: {detail.get('early_stopping_result', '')}"
    out: dict[str, Any] = {
        "validity": validity,
        "invalid_reason": " ".join(reason.split()) or None,
        "min_duration_met": detail.get("result_min_duration_met"),
        "min_queries_met": detail.get("result_min_queries_met"),
        "early_stopping_met": detail.get("early_stopping_met"),
        "perf_constraints_met": detail.get("result_perf_constraints_met"),
        "early_stopping_result": detail.get("early_stopping_result"),
        "query_count": detail.get("result_query_count"),
        "qps_with_loadgen_overhead": detail.get("result_qps_with_loadgen_overhead"),
        "qps_without_loadgen_overhead": detail.get("result_qps_without_loadgen_overhead"),
        "scheduled_qps": detail.get("result_scheduled_samples_per_sec"),
        "completed_samples_per_sec": detail.get("result_completed_samples_per_sec"),
        "samples_per_second": detail.get("result_samples_per_second"),
    }
    for key, value in detail.items():
        if key.startswith("result_") and key.endswith("_percentile_latency_ns"):
            pct = key[len("result_") : -len("_percentile_latency_ns")]
            out[f"p{float(pct):g}_ms"] = value / ns
        elif key in ("result_mean_latency_ns", "result_min_latency_ns", "result_max_latency_ns"):
            out[key[len("result_") : -len("_latency_ns")] + "_ms"] = value / ns
    # early_stopping_latency_ss: SingleStream's p90 bound; _ms: MultiStream's p99 bound
    # (and Server's, when LoadGen logs it); 0 means LoadGen could not estimate it.
    for key, pct in (("early_stopping_latency_ss", 90), ("early_stopping_latency_ms", 99)):
        if detail.get(key):
            out[f"early_stopping_p{pct}_ms"] = detail[key] / ns
    out["settings_effective"] = {
        k: v for k, v in detail.items() if k.startswith(("requested_", "effective_"))
    }
    return out


def run_loadgen(
    lg: Any,
    runner: Any,
    library: SampleLibrary,
    scenario: str,
    spec: dict[str, Any],
    log_dir: Path,
    batch_size: int = 1,
    server: ServerPolicy | None = None,
) -> dict[str, Any]:
    """One LoadGen test of ``scenario``; logs go to ``log_dir``; returns LoadGen's result."""
    if scenario not in LOADGEN_SCENARIOS:
        raise ValueError(f"unknown LoadGen scenario {scenario!r}; use one of {LOADGEN_SCENARIOS}")
    log_dir.mkdir(parents=True, exist_ok=True)
    settings, chosen = test_settings(lg, scenario, spec)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(log_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    sut_obj = RunnerSUT(
        runner, library, lg, scenario, batch_size, server, keep_outputs=bool(spec.get("accuracy"))
    )
    log_thread: list[str] = []
    started = time.perf_counter()
    with sut_obj:
        before = thread_ids()  # the Server SUT's workers are running by now

        def load(indices: list[int]) -> None:
            if not log_thread:  # LoadGen's first load: its log thread has started
                log_thread.append(demote_log_thread(before))
            library.load(indices)

        sut = lg.ConstructSUT(sut_obj.issue, sut_obj.flush)
        qsl = lg.ConstructQSL(library.total, library.performance_count, load, library.unload)
        try:
            if scenario == "Server":
                sut_obj.serve(lambda: lg.StartTestWithLogSettings(sut, qsl, settings, log_settings))
            else:
                lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
        finally:
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
    if sut_obj.errors:
        raise RuntimeError(f"the runner failed under LoadGen: {sut_obj.errors[0]!r}")
    result = loadgen_result(read_detail_log(log_dir / "mlperf_log_detail.txt"))
    result.update(
        scenario=scenario,
        settings=chosen,
        sut={**sut_obj.describe(), "loadgen_log_thread": log_thread[0] if log_thread else None},
        wall_s=time.perf_counter() - started,
        n_batches=len(sut_obj.batches),
        mean_batch=float(np.mean(sut_obj.batches)) if sut_obj.batches else 0.0,
        logs={p.name: str(p) for p in sorted(log_dir.glob("mlperf_log_*"))},
    )
    return result


def queries_short(result: dict[str, Any]) -> int | None:
    """How many more queries LoadGen's early stopping asked for, when that is the only
    thing that made a run INVALID (its latency constraint held); else None."""
    if result.get("validity") == "VALID" or not result.get("perf_constraints_met"):
        return None
    if result.get("early_stopping_met") is not False:
        return None
    found = _MORE_QUERIES.search(result.get("early_stopping_result") or "")
    return int(found.group(1)) if found else None


_MORE_QUERIES = re.compile(r"at least (\d+) more queries")
EARLY_STOPPING_CONFIDENCE = 0.99  # LoadGen's


def early_stopping_queries(percentile: float, overflows: int = 0) -> int:
    """The fewest queries with which LoadGen's early stopping can pass a latency percentile:
    the least n with P(at most ``overflows`` of n queries over it) <= 1 - 0.99. Server allows
    none (44 for p90, 459 for p99); SingleStream estimates its p90 allowing one (64)."""
    over, n = 1.0 - percentile, overflows + 1
    while (
        sum(math.comb(n, k) * over**k * percentile ** (n - k) for k in range(overflows + 1))
        > 1 - EARLY_STOPPING_CONFIDENCE
    ):
        n += 1
    return n


def with_min_queries(spec: dict[str, Any], min_queries: int, rate: float) -> dict[str, Any]:
    """``spec`` that can issue ``min_queries`` at ``rate`` q/s before its time cap: LoadGen
    ends a run at max_duration even short of min_queries ("exited early"), which would make
    it INVALID for lack of time, not for its latencies."""
    return {
        **spec,
        "min_queries": min_queries,
        "max_duration_s": max(spec["max_duration_s"], 1.25 * min_queries / rate + 1.0),
    }


def expected_ms(runner: Runner, inputs: np.ndarray, batch_size: int, warmup: int) -> float:
    """Median latency of a few untimed batches: LoadGen's expected latency/QPS hints."""
    batch = batch_of(inputs, batch_size)
    times = []
    for _ in range(max(3, warmup)):
        start = time.perf_counter_ns()
        runner.run(batch)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return float(np.median(times))


def samples_per_query(job: InferenceJob) -> int:
    return {"MultiStream": MULTI_STREAM_SAMPLES, "Offline": job.batch_size}.get(job.scenario, 1)


def base_spec(runner: Runner, job: InferenceJob, inputs: np.ndarray) -> dict[str, Any]:
    """The LoadGen settings of a job before any scenario's own: its timing and the
    runner's measured latency as LoadGen's hints."""
    timing, samples = job.timing, samples_per_query(job)
    # Halved: LoadGen pre-generates min_duration / expected queries, and too few is INVALID.
    expected = 0.5 * expected_ms(runner, inputs, samples, timing["warmup"])
    return {
        **{k: timing[k] for k in ("min_duration_s", "max_duration_s", "min_queries")},
        "expected_latency_ms": expected,
        "samples_per_query": MULTI_STREAM_SAMPLES,
        # Offline sizes its one query from this; too low and the query ends before min_duration.
        "expected_qps": 0.75 * samples * 1e3 / expected,  # 1.5x the measured rate
    }


def point_metrics(result: dict[str, Any], job: InferenceJob, expected: float) -> dict[str, Any]:
    """A LoadGen result as a timing point's metrics."""
    samples = samples_per_query(job)
    n_queries = result["query_count"] or 0
    rate = result.get("qps_with_loadgen_overhead")
    throughput = (
        result.get("samples_per_second")  # Offline
        or result.get("completed_samples_per_sec")  # Server
        or (rate or 0) * samples  # SingleStream
        or samples * 1e3 / result["mean_ms"]  # MultiStream: queries back to back
    )
    duration = n_queries / rate if rate else None
    return {
        **result,
        "loadgen": True,
        "n_iterations": n_queries,
        "samples_per_query": samples,
        "throughput_ips": throughput,
        "duration_s": duration,
        "expected_latency_ms": expected,
        "stopped_by": "loadgen",
    }


def run(runner: Runner, job: InferenceJob, inputs: np.ndarray) -> dict[str, Any]:
    """One SingleStream, MultiStream or Offline point; LoadGen's logs go to job.loadgen_dir."""
    import mlperf_loadgen as lg

    spec = base_spec(runner, job, inputs)
    expected = spec["expected_latency_ms"]
    if job.scenario == "SingleStream":  # its p90 is VALID only from LoadGen's minimum count on
        needed = max(spec["min_queries"], early_stopping_queries(0.9, overflows=1))
        spec = with_min_queries(spec, needed, 1e3 / (2 * expected))
    library = SampleLibrary(inputs)
    log_dir = Path(job.loadgen_dir)
    result = run_loadgen(lg, runner, library, job.scenario, spec, log_dir, job.batch_size)
    return point_metrics(result, job, expected)
