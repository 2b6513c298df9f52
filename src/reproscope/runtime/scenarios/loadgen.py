"""SingleStream, MultiStream and Offline, driven by MLPerf LoadGen through the SUT and QSL
of :mod:`reproscope.runtime.scenarios.loadgen_sut`; what every LoadGen scenario shares
(Server's rate search, :mod:`reproscope.runtime.scenarios.server_search`, runs on it).

Env-side: imports only the standard library, numpy and ``mlperf_loadgen`` (pinned in every
framework environment). LoadGen issues the queries, times them, applies its early-stopping
rule and writes its logs (``mlperf_log_summary.txt``, ``mlperf_log_detail.txt`` and, in
accuracy mode, ``mlperf_log_accuracy.json``) into the job's log directory; this module reads
its verdict back from the detail log, never re-deriving it.

Settings come as MLPerf's own do: LoadGen's ``mlperf.conf`` (built into LoadGen) for the
benchmark the manifest names (``mlperf_benchmark``; unnamed, its ``*`` lines), then a
generated ``user.conf`` (written beside the logs), through ``TestSettings.FromConfig``. The
seeds, percentiles, latency bounds and sample counts are mlperf.conf's; ``user.conf`` holds
LoadGen's expected-latency/QPS hints and, outside ``timing_profile: mlperf``, the study's
shorter durations and counts (and Server's latency bound). Each result lists, in
``deviations``, every effective setting the rules fix that differs from mlperf.conf's, and
every other departure from how a submission runs (see :func:`deviations`).

Outside the ``mlperf`` profile LoadGen's log IO thread runs at SCHED_IDLE (``loadgen_log_thread``
in ``sut``; see :func:`demote_log_thread`): waking every 10 ms at normal priority it preempted
the framework's threads and made PyTorch at batch 1 measure 0.8 % slower under LoadGen
(10 fresh processes, interleaved, 95 % CI -0.3..+1.9 %). A submission cannot change LoadGen's
behaviour, so it is a deviation, and off under ``mlperf``.
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

from reproscope.runtime.cache import Cache
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.scenarios.fixed_batch import StopRule, run_fixed_batch
from reproscope.runtime.scenarios.loadgen_sut import (
    CachedSamples,
    RunnerSUT,
    SampleLibrary,
    ServerPolicy,
)
from reproscope.runtime.tensorize import batch_of

LOADGEN_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MULTI_STREAM_SAMPLES = 8  # MLPerf's samples per MultiStream query
MLPERF_PROFILE = "mlperf"  # timing["profile"] of `timing_profile: mlperf`
#: The model name mlperf.conf is read for when a manifest names no benchmark: it matches
#: only mlperf.conf's ``*`` lines.
UNNAMED_BENCHMARK = "reproscope-unnamed"
#: The sample library of a benchmark mlperf.conf gives no count for (ResNet-50's).
DEFAULT_PERFORMANCE_SAMPLES = 1024


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


def mlperf_conf(lg: Any, benchmark: str | None, scenario: str) -> Any:
    """TestSettings as LoadGen's built-in mlperf.conf sets them for ``benchmark`` (unnamed:
    its ``*`` lines). Loaded explicitly (``conf_type`` 0) each time: LoadGen loads it on
    its own only at a process's first ``FromConfig``, and a round runs several points."""
    settings = lg.TestSettings()
    if settings.FromConfig("", benchmark or UNNAMED_BENCHMARK, scenario, 0) != 0:
        raise RuntimeError(f"LoadGen could not read its mlperf.conf for {benchmark!r}")
    return settings


def performance_count(lg: Any, benchmark: str | None, total: int) -> int:
    """The sample library's size: the benchmark's MLPerf count (mlperf.conf's
    performance_sample_count_override) or else 1,024, never above the dataset's size."""
    official = mlperf_conf(lg, benchmark, "SingleStream").performance_sample_count_override
    return min(int(official) or DEFAULT_PERFORMANCE_SAMPLES, total)


def user_conf(scenario: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The user.conf entries of a plain spec: LoadGen's hints always; the durations, counts,
    latency bound and sample count only where the spec states them."""
    entries: dict[str, Any] = {}
    if scenario in ("SingleStream", "MultiStream"):
        entries["target_latency"] = round(float(spec["expected_latency_ms"]), 6)
    elif scenario == "Server":
        entries["target_qps"] = round(float(spec["target_qps"]), 6)
    else:
        entries["target_qps"] = round(float(spec["expected_qps"]), 6)
    for key, conf, scale in (
        ("min_duration_s", "min_duration", 1000),
        ("max_duration_s", "max_duration", 1000),
        ("min_queries", "min_query_count", 1),
    ):
        if key in spec:
            entries[conf] = int(math.ceil(spec[key] * scale))
    if scenario == "Server" and "latency_bound_ms" in spec:
        entries["target_latency"] = round(float(spec["latency_bound_ms"]), 6)
        entries["target_latency_percentile"] = round(100 * spec["latency_percentile"], 6)
    if "performance_sample_count" in spec:
        entries["performance_sample_count_override"] = int(spec["performance_sample_count"])
    return entries


#: The TestSettings the rules fix. A duration or count may be raised, never lowered
#: (``at_least``); anything else must equal mlperf.conf's. Fields named for another
#: scenario (``server_`` in SingleStream, ...) do not apply.
RULES = {
    "min_duration_ms": "at_least",
    "min_query_count": "at_least",
    "performance_sample_count_override": "at_least",
    "qsl_rng_seed": "equal",
    "sample_index_rng_seed": "equal",
    "schedule_rng_seed": "equal",
    "single_stream_target_latency_percentile": "equal",
    "multi_stream_target_latency_percentile": "equal",
    "multi_stream_samples_per_query": "equal",
    "server_target_latency_ns": "equal",
    "server_target_latency_percentile": "equal",
}
_SCENARIO_PREFIX = {
    "SingleStream": "single_stream_",
    "MultiStream": "multi_stream_",
    "Server": "server_",
    "Offline": "offline_",
}


def deviations(official: Any, effective: Any, scenario: str) -> list[str]:
    """Each effective setting the rules fix that differs from mlperf.conf's, as
    ``field=value (mlperf.conf: value)``."""
    others = tuple(p for s, p in _SCENARIO_PREFIX.items() if s != scenario)
    found = []
    for field, rule in RULES.items():
        if field.startswith(others):
            continue
        want, got = getattr(official, field), getattr(effective, field)
        if field == "performance_sample_count_override" and not want:
            continue  # mlperf.conf leaves it to the QSL: the library's size stands
        if got == want or (rule == "at_least" and got > want):
            continue
        found.append(f"{field}={got} (mlperf.conf: {want})")
    return found


def test_settings(
    lg: Any, scenario: str, spec: dict[str, Any], log_dir: Path
) -> tuple[Any, dict[str, Any]]:
    """LoadGen TestSettings from mlperf.conf and the user.conf of a plain spec (written to
    ``log_dir``); returns them and what was set, with the deviations (for the record)."""
    benchmark = spec.get("benchmark")
    model = benchmark or UNNAMED_BENCHMARK
    entries = user_conf(scenario, spec)
    path = log_dir / "user.conf"
    path.write_text("".join(f"{model}.{scenario}.{k} = {v}\n" for k, v in entries.items()))
    settings = mlperf_conf(lg, benchmark, scenario)
    if settings.FromConfig(str(path), model, scenario, 2) != 0:  # 2: this file alone
        raise RuntimeError(f"{path}: LoadGen refused the user.conf written for it")
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = (
        lg.TestMode.AccuracyOnly if spec.get("accuracy") else lg.TestMode.PerformanceOnly
    )
    found = deviations(mlperf_conf(lg, benchmark, scenario), settings, scenario)
    if benchmark is None:
        found.insert(0, "no mlperf_benchmark: mlperf.conf's settings for any model")
    chosen = {
        "scenario": scenario,
        "mode": str(settings.mode),
        "benchmark": benchmark,
        "user_conf": entries,
        "deviations": found,
    }
    return settings, chosen


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


SCHED_IDLE_DEVIATION = "LoadGen's log thread at SCHED_IDLE"


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
    """One LoadGen test of ``scenario``; logs go to ``log_dir``; returns LoadGen's result.
    ``spec["sched_idle"]`` (default True) demotes LoadGen's log thread (a deviation)."""
    if scenario not in LOADGEN_SCENARIOS:
        raise ValueError(f"unknown LoadGen scenario {scenario!r}; use one of {LOADGEN_SCENARIOS}")
    log_dir.mkdir(parents=True, exist_ok=True)
    settings, chosen = test_settings(lg, scenario, spec, log_dir)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(log_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    sut_obj = RunnerSUT(
        runner, library, lg, scenario, batch_size, server, keep_outputs=bool(spec.get("accuracy"))
    )
    demote = spec.get("sched_idle", True)
    log_thread: list[str] = [] if demote else ["normal priority (as a submission runs it)"]
    started = time.perf_counter()
    with sut_obj:
        before = thread_ids()  # the Server SUT's workers are running by now

        def load(indices: list[int]) -> None:
            if not log_thread:  # LoadGen's first load: its log thread has started
                log_thread.append(demote_log_thread(before))
            try:
                library.load(indices)
            except BaseException as exc:  # raised into LoadGen's C++, it would end the process
                sut_obj.errors.append(exc)

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
    found = list(chosen["deviations"])
    if log_thread and log_thread[0] == "SCHED_IDLE":
        found.append(SCHED_IDLE_DEVIATION)
    result.update(
        scenario=scenario,
        settings=chosen,
        deviations=found,
        sut={**sut_obj.describe(), "loadgen_log_thread": log_thread[0] if log_thread else None},
        wall_s=time.perf_counter() - started,
        n_batches=len(sut_obj.batches),
        mean_batch=float(np.mean(sut_obj.batches)) if sut_obj.batches else 0.0,
        performance_sample_count=library.performance_count,
        distinct_samples=len({i for query in sut_obj.issued for i in query}),
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


def steady_ms(runner: Runner, inputs: np.ndarray, batch_size: int, warmup: int) -> float:
    """Median latency of a batch once the runner is warm: ``warmup`` untimed batches (at
    least 3), then batches back to back for 0.2 s and at least 5. Right after loading, a
    few batches ran up to 2.2x slower than steady state, and an Offline query sized from
    them ended before its minimum duration."""
    batch = batch_of(inputs, batch_size)
    rule = StopRule(min_duration_s=0.2, min_queries=5, max_duration_s=5.0)
    result = run_fixed_batch(lambda _n: runner.run(batch), batch_size, max(3, warmup), rule)
    return float(np.median(result.latencies_ms))


def samples_per_query(job: InferenceJob) -> int:
    return {"MultiStream": MULTI_STREAM_SAMPLES, "Offline": job.batch_size}.get(job.scenario, 1)


def is_mlperf(job: InferenceJob) -> bool:
    return (job.timing or {}).get("profile") == MLPERF_PROFILE


def sample_library(lg: Any, job: InferenceJob) -> SampleLibrary:
    """The QSL of a job: the dataset's cached tensors, the benchmark's MLPerf count of them
    (or 1,024) resident at a time, as LoadGen chooses."""
    samples = CachedSamples(Cache(job.inputs), job.tensor or {})
    return SampleLibrary(samples, performance_count(lg, job.mlperf_benchmark, len(samples)))


def base_spec(lg: Any, runner: Runner, job: InferenceJob, inputs: np.ndarray) -> dict[str, Any]:
    """The LoadGen settings of a job before any scenario's own: the benchmark, the study's
    durations and counts (none under the mlperf profile: mlperf.conf's stand), the library's
    size where it differs from mlperf.conf's, and the runner's steady latency as LoadGen's
    hints."""
    timing, samples = job.timing or {}, samples_per_query(job)
    mlperf = is_mlperf(job)
    spec: dict[str, Any] = {
        "benchmark": job.mlperf_benchmark,
        "max_duration_s": timing["max_duration_s"],
        "sched_idle": not mlperf,
    }
    if not mlperf:
        spec.update(min_duration_s=timing["min_duration_s"], min_queries=timing["min_queries"])
    if job.scenario == "Offline":  # its one query holds at least the stated batch
        official = mlperf_conf(lg, job.mlperf_benchmark, "Offline").min_query_count
        if spec.get("min_queries", official) < job.batch_size:
            spec["min_queries"] = job.batch_size
    steady = steady_ms(runner, inputs, samples, timing.get("warmup", 0))
    # Halved: LoadGen pre-generates min_duration / expected queries, and too few is INVALID.
    spec["expected_latency_ms"] = 0.5 * steady
    # Offline sizes its one query from this; too low and the query ends before min_duration.
    spec["expected_qps"] = 1.5 * samples * 1e3 / steady
    return spec


def library_spec(spec: dict[str, Any], library: SampleLibrary, lg: Any) -> dict[str, Any]:
    """``spec`` with the library's size in user.conf where it is not mlperf.conf's, so that
    LoadGen logs the count it really used."""
    official = mlperf_conf(lg, spec.get("benchmark"), "SingleStream")
    if library.performance_count == official.performance_sample_count_override:
        return spec
    return {**spec, "performance_sample_count": library.performance_count}


def point_metrics(result: dict[str, Any], job: InferenceJob, expected: float) -> dict[str, Any]:
    """A LoadGen result as a timing point's metrics; Offline's samples per query are the
    ones LoadGen issued."""
    samples = samples_per_query(job)
    if job.scenario == "Offline":
        samples = (result.get("settings_effective") or {}).get(
            "effective_samples_per_query", samples
        )
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
        "mlperf_benchmark": job.mlperf_benchmark,
        "n_iterations": n_queries,
        "samples_per_query": samples,
        "throughput_ips": throughput,
        "duration_s": duration,
        "expected_latency_ms": expected,
        "stopped_by": "loadgen",
    }


def logged_top1(path: Path, n_samples: int) -> np.ndarray:
    """The top-1 class of every sample in LoadGen's ``mlperf_log_accuracy.json`` (float32
    logits, as the SUT reports them), by QSL index; -1 where a sample is missing."""
    top1 = np.full(n_samples, -1, dtype=np.int64)
    for entry in json.loads(path.read_text()):
        logits = np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.float32)
        top1[entry["qsl_idx"]] = int(np.argmax(logits))  # ties: the lower index, as top_k's
    return top1


def accuracy_run(
    lg: Any, runner: Runner, job: InferenceJob, spec: dict[str, Any], library: SampleLibrary
) -> dict[str, Any]:
    """LoadGen's AccuracyOnly run of a point's configuration: every sample of the library
    once, its outputs in ``accuracy/mlperf_log_accuracy.json`` beside the point's logs."""
    log_dir = Path(job.loadgen_dir) / "accuracy"
    result = run_loadgen(
        lg, runner, library, job.scenario, {**spec, "accuracy": True}, log_dir, job.batch_size
    )
    top1 = logged_top1(log_dir / "mlperf_log_accuracy.json", library.total)
    return {
        "log": str(log_dir / "mlperf_log_accuracy.json"),
        "top1_index": top1.tolist(),
        "validity": result["validity"],
    }


def run(runner: Runner, job: InferenceJob, inputs: np.ndarray) -> dict[str, Any]:
    """One SingleStream, MultiStream or Offline point; LoadGen's logs go to job.loadgen_dir.
    ``inputs`` (the first batch) give the warm-up and hints; LoadGen's queries read the
    sample library, the dataset's cached tensors."""
    import mlperf_loadgen as lg

    spec = base_spec(lg, runner, job, inputs)
    expected = spec["expected_latency_ms"]
    if job.scenario == "SingleStream" and "min_queries" in spec:
        # its p90 is VALID only from LoadGen's minimum count on
        needed = max(spec["min_queries"], early_stopping_queries(0.9, overflows=1))
        spec = with_min_queries(spec, needed, 1e3 / (2 * expected))
    library = sample_library(lg, job)
    spec = library_spec(spec, library, lg)
    log_dir = Path(job.loadgen_dir)
    result = run_loadgen(lg, runner, library, job.scenario, spec, log_dir, job.batch_size)
    if is_mlperf(job):  # as a submission does: the timing configuration's outputs, logged
        result["accuracy_run"] = accuracy_run(lg, runner, job, spec, library)
    return point_metrics(result, job, expected)
