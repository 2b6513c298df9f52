"""One inference job, run inside its pinned environment:
`python -m reproscope.runtime.infer JOB.json`.

Env-side: imports only the standard library, numpy and the job's framework. A failure
in the measured system (absent device, out of memory, missing operator) is written as a
result with its status and reason, so the rest of the study completes.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.runtime import memory
from reproscope.runtime.atomic import write_text
from reproscope.runtime.cache import Cache, NpyWriter
from reproscope.runtime.digests import env_identity, sha256_file
from reproscope.runtime.fingerprint import system_fingerprint
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.loadgen_harness import (
    MULTI_STREAM_SAMPLES,
    SERVER_ATTEMPTS,
    SampleLibrary,
    ServerPolicy,
    early_stopping_queries,
    find_peak_server_rate,
    queries_short,
    run_loadgen,
    server_trial_spec,
    with_min_queries,
)
from reproscope.runtime.noise import NOISE_THRESHOLD, NoiseMonitor, pin_cpus
from reproscope.runtime.peak import measure_peak_gflops
from reproscope.runtime.resources import GpuSampler
from reproscope.runtime.scenarios import StopRule, run_fixed_batch
from reproscope.runtime.shards import shard_range
from reproscope.runtime.stats import summarize
from reproscope.runtime.tensorize import finish

PROGRESS_EVERY_S = 10.0
FRAMEWORK_PACKAGES = {
    "pytorch": ["torch"],
    "onnxruntime": ["onnxruntime", "onnxruntime-gpu", "onnx"],
    "tensorflow": ["tensorflow", "tensorflow-cpu", "keras"],
}


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest logits; ties go to the lower index (stable sort)."""
    return np.argsort(-logits, axis=1, kind="stable")[:, :k].astype(np.int32)


def batch_of(inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The first batch_size inputs, cycling through the set when it is smaller."""
    index = np.arange(batch_size) % len(inputs)
    return np.ascontiguousarray(inputs[index])


def accuracy_pass(
    runner: Any,
    cache: Cache,
    spec: dict[str, Any],
    job: dict[str, Any],
    progress: Any = sys.stdout,
) -> dict[str, Any]:
    """Logits and top-k of images [start, stop) of the cache, streamed batch by batch into
    .npy files: memory holds one batch, whatever the number of images."""
    batch_size, k = job["batch_size"], job["top_k"]
    shard, shards = job.get("shard", (0, 1))
    start, stop = shard_range(len(cache), batch_size, shard, shards)
    n = max(stop - start, 0)
    logits_out = topk_out = None
    began = time.perf_counter()
    compute = 0.0
    next_report = began + PROGRESS_EVERY_S
    for offset, pixels in cache.batches(batch_size, start, stop):
        batch = finish(pixels, spec)
        t0 = time.perf_counter()
        logits = np.asarray(runner.run(batch), dtype=np.float32)
        compute += time.perf_counter() - t0
        if logits_out is None:
            logits_out = NpyWriter(job["logits_out"], np.float32, (n, *logits.shape[1:]))
            topk_out = NpyWriter(job["topk_out"], np.int32, (n, k))
        logits_out.write(logits)
        topk_out.write(top_k(logits, k))
        done = offset - start + len(logits)
        if time.perf_counter() >= next_report or done == n:
            rate = done / (time.perf_counter() - began)
            print(f"accuracy: {done}/{n} images, {rate:.1f} img/s", file=progress, flush=True)
            next_report = time.perf_counter() + PROGRESS_EVERY_S
    if logits_out is None:  # no image in range: empty outputs, which Snakemake expects
        np.save(job["logits_out"], np.zeros((0,), dtype=np.float32))
        np.save(job["topk_out"], np.zeros((0, k), dtype=np.int32))
    else:
        logits_out.close()
        topk_out.close()
    return {
        "n_images": n,
        "first_image": start,
        "seconds": time.perf_counter() - began,
        "compute_seconds": compute,
    }


def _issue(runner: Any, batch: np.ndarray) -> Any:
    return lambda _n: runner.run(batch)


def stop_rule(timing: dict[str, Any]) -> StopRule:
    return StopRule(
        timing["min_duration_s"],
        timing["min_queries"],
        timing["max_duration_s"],
        timing.get("target_ci_rel"),
    )


def fixed_batch(runner: Any, inputs: np.ndarray, job: dict[str, Any]) -> dict[str, Any]:
    """FixedBatch: one batch of N at a time, closed loop; per-batch latency statistics."""
    timing = job["timing"]
    batch = batch_of(inputs, job["batch_size"])
    result = run_fixed_batch(
        _issue(runner, batch), job["batch_size"], timing["warmup"], stop_rule(timing)
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


def _expected_ms(runner: Any, inputs: np.ndarray, batch_size: int, warmup: int) -> float:
    """Median latency of a few untimed batches: LoadGen's expected latency/QPS hints."""
    batch = batch_of(inputs, batch_size)
    times = []
    for _ in range(max(3, warmup)):
        start = time.perf_counter_ns()
        runner.run(batch)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return float(np.median(times))


def loadgen_scenario(runner: Any, inputs: np.ndarray, job: dict[str, Any]) -> dict[str, Any]:
    """SingleStream, MultiStream, Server or Offline, driven by MLPerf LoadGen; its logs go to
    job['loadgen_dir']."""
    import mlperf_loadgen as lg

    timing, scenario = job["timing"], job["scenario"]
    log_dir = Path(job["loadgen_dir"])
    library = SampleLibrary(inputs)
    per_query = {"MultiStream": MULTI_STREAM_SAMPLES, "Offline": job["batch_size"]}
    samples = per_query.get(scenario, 1)
    # Halved: LoadGen pre-generates min_duration / expected queries, and too few is INVALID.
    expected = 0.5 * _expected_ms(runner, inputs, samples, timing["warmup"])
    spec = {
        **{k: timing[k] for k in ("min_duration_s", "max_duration_s", "min_queries")},
        "expected_latency_ms": expected,
        "samples_per_query": MULTI_STREAM_SAMPLES,
        # Offline sizes its one query from this; too low and the query ends before min_duration.
        "expected_qps": 0.75 * samples * 1e3 / expected,  # 1.5x the measured rate
        "accuracy": job.get("loadgen_accuracy", False),
    }
    if scenario == "SingleStream":  # its p90 is VALID only from LoadGen's minimum count on
        needed = max(spec["min_queries"], early_stopping_queries(0.9, overflows=1))
        spec = with_min_queries(spec, needed, 1e3 / (2 * expected))
    if scenario != "Server":
        result = run_loadgen(lg, runner, library, scenario, spec, log_dir, job["batch_size"])
    else:
        server = job["server"]
        policy = ServerPolicy(
            server.get("workers", 1), server.get("max_batch", 1), server.get("max_wait_ms", 0.0)
        )
        spec["latency_bound_ms"] = server["latency_bound_ms"]
        spec["latency_percentile"] = server.get("latency_percentile", 0.99)

        def trial(rate: float) -> dict[str, Any]:
            """One rate; a run INVALID only for too few queries for early stopping (its
            latency held) is run again with as many as LoadGen asked for: a rate is INVALID
            because of its latencies, never because it was measured too briefly."""
            needed = early_stopping_queries(spec["latency_percentile"])
            trial_spec = server_trial_spec(spec, rate, max(spec["min_queries"], needed))
            for attempt in range(SERVER_ATTEMPTS):
                trial_dir = log_dir / f"qps_{rate:.3f}" / f"attempt{attempt}"
                result = run_loadgen(
                    lg, runner, library, "Server", trial_spec, trial_dir, 1, policy
                )
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


def run_scenario(runner: Any, inputs: np.ndarray, job: dict[str, Any]) -> dict[str, Any]:
    """One timing point: FixedBatch (own closed loop) or an MLPerf scenario (LoadGen)."""
    if job["scenario"] == "FixedBatch":
        metrics = fixed_batch(runner, inputs, job)
    else:
        metrics = loadgen_scenario(runner, inputs, job)
    return {**metrics, "scenario": job["scenario"], "batch_size": job["batch_size"]}


def measures_breakdown(job: dict[str, Any]) -> bool:
    """The breakdown describes a configuration and is never compared: it is measured at the
    FixedBatch points (what the breakdown plot and the system ranking read) of the first
    round only. In every point of every round it took 7 % of a round's time."""
    return job["scenario"] == "FixedBatch" and job.get("repeat", 0) == 0


def breakdown(runner: Any, inputs: np.ndarray, job: dict[str, Any]) -> dict[str, float]:
    """Median end-to-end parts of one batch: input preparation (measured by the preprocess
    job, per image), copies, compute and post-processing (top-k)."""
    batch = batch_of(inputs, job["batch_size"])
    parts: dict[str, list[float]] = {}
    for _ in range(job.get("breakdown_iterations", 3)):
        logits, stages = runner.run_stages(batch)
        t0 = time.perf_counter_ns()
        top_k(logits, job["top_k"])
        stages["postprocess_ms"] = (time.perf_counter_ns() - t0) / 1e6
        for key, value in stages.items():
            parts.setdefault(key, []).append(value)
    medians = {key: float(np.median(values)) for key, values in parts.items()}
    cache = Cache(job["inputs"])
    pixels = batch_of(cache.first(job["batch_size"]), job["batch_size"])
    t0 = time.perf_counter_ns()
    finish(pixels, job["tensor"])
    finish_ms = (time.perf_counter_ns() - t0) / 1e6
    # decoding and resizing, measured per image by the preprocess job; then the
    # per-pixel stages (normalisation, layout) of this batch, measured here
    medians["preprocess_ms"] = cache.index["seconds_per_image"] * 1e3 * job["batch_size"]
    medians["preprocess_ms"] += finish_ms
    return medians


def latency_run(runner: Any, inputs: np.ndarray, job: dict[str, Any]) -> dict[str, Any]:
    sampler = GpuSampler() if job["device"] == "cuda" else None
    with NoiseMonitor(job.get("noise_threshold", NOISE_THRESHOLD)) as noise:
        if sampler is None:
            metrics = run_scenario(runner, inputs, job)
        else:
            with sampler:
                metrics = run_scenario(runner, inputs, job)
    metrics["noise"] = noise.summary()
    if sampler is not None:
        gpu = sampler.summary()
        images = metrics["n_iterations"] * metrics.get("samples_per_query", job["batch_size"])
        gpu["energy_per_inference_j"] = (
            sampler.energy_per_inference_j(images) if sampler.available else None
        )
        metrics["gpu"] = gpu
    if measures_breakdown(job):
        metrics["breakdown"] = breakdown(runner, inputs, job)
    return metrics


def provenance(job: dict[str, Any]) -> dict[str, Any]:
    """The system fingerprint, the memory policy in force and the hashes of what the job
    read (once per process: a round's points share it)."""
    fingerprint = system_fingerprint(job["threads"], FRAMEWORK_PACKAGES[job["framework"]])
    fingerprint["cpu_set"] = (
        sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    )
    found = {
        "fingerprint": fingerprint,
        "artifact_sha256": sha256_file(job["artifact"]),
        "inputs_sha256": Cache(job["inputs"]).content_sha256(),
        "env_lock_sha256": env_identity(job["env_lock"]),
    }
    if job.get("huge_pages") is not None:
        found["memory"] = memory.describe(job["huge_pages"])
    return found


def run_job(
    job: dict[str, Any], runner: Any = None, known: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Any]:
    """One job; a grouped job passes the runner it already loaded (load_s is then ~0)
    and the provenance it already computed."""
    from reproscope.runtime.runners import DeviceUnavailable, make_runner

    started = time.perf_counter()
    record: dict[str, Any] = {"job": job, "status": "ok", "reason": None}
    record.update(copy.deepcopy(known) if known else provenance(job))
    cache = Cache(job["inputs"])
    try:
        if runner is None:
            runner = make_runner(job["framework"])
            runner.load(Path(job["artifact"]), job)
        record["runner"] = runner.info()
        record["load_s"] = time.perf_counter() - started
        fingerprint = record["fingerprint"]
        if job["mode"] == "latency" and "peak_gflops" not in fingerprint:
            # After load: the runner has set the framework's thread count.
            peak = measure_peak_gflops(runner.gemm())
            fingerprint.update(peak_gflops=peak["peak_gflops"], peak_method=peak["method"])
        if job["mode"] == "accuracy":
            record["metrics"] = accuracy_pass(runner, cache, job["tensor"], job)
        else:
            inputs = finish(cache.first(job["batch_size"]), job["tensor"])
            record["metrics"] = latency_run(runner, inputs, job)
    except DeviceUnavailable as exc:
        record.update(status="unavailable", reason=f"device {job['device']}: {exc}")
    except Exception as exc:  # a failure of the measured system becomes a result row
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    if record["status"] != "ok" and job["mode"] == "accuracy":
        for key in ("logits_out", "topk_out"):  # outputs must exist for Snakemake
            np.save(job[key], np.zeros((0,), dtype=np.float32))
    record["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    record["wall_s"] = time.perf_counter() - started
    return record, runner


def write_record(record: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)  # a point's folder inside its round's
    write_text(out, json.dumps(record, indent=1, sort_keys=True, default=str))


def estimated_point_s(record: dict[str, Any], batch_size: int, job: dict[str, Any]) -> float:
    """Wall time of the next point, from the last measured one: latency grows at most
    linearly with the batch; warm-up, the timed run and any breakdown batches."""
    metrics = record.get("metrics", {})
    if not metrics.get("p50_ms") or not metrics.get("batch_size"):
        return 0.0
    per_batch_s = metrics["p50_ms"] / 1e3 * batch_size / metrics["batch_size"]
    timing = job["timing"]
    timed = max(timing["min_duration_s"], timing["min_queries"] * per_batch_s)
    extra = timing["warmup"]
    if measures_breakdown(job):
        extra += job.get("breakdown_iterations", 3)
    return min(timed, timing["max_duration_s"]) + extra * per_batch_s


def run_group(group: InferenceJob) -> None:
    """All timing points of one configuration in one round, in one process: the framework
    is imported and the model loaded once. Each point keeps its own result.
    With timing.group_budget_s, a point that would not fit in what is left of the budget
    is written as 'skipped' with its estimate (and so is every larger one)."""
    runner = None
    unavailable = None
    known = provenance(group.to_dict())
    budget = (group.timing or {}).get("group_budget_s")
    started, last = time.perf_counter(), None
    for point_job in group.point_jobs():
        point = point_job.to_dict()
        left = budget - (time.perf_counter() - started) if budget else None
        estimate = estimated_point_s(last, point["batch_size"], point) if budget and last else 0.0
        if unavailable:  # the device does not exist: no point can run on it
            record = {"job": point, **known, "status": "unavailable", "reason": unavailable}
        elif left is not None and (left <= 0 or estimate > left):
            record = {
                "job": point,
                **copy.deepcopy(known),
                "status": "skipped",
                "reason": f"time budget: estimated {estimate:.0f} s, {max(left, 0):.0f} s "
                f"of timing.group_budget_s={budget:g} left",
            }
        else:
            record, runner = run_job(point, runner, known)
            last = record if record["status"] == "ok" else last
        known["fingerprint"] = record["fingerprint"]  # keeps the peak measured once
        if record["status"] == "unavailable":
            unavailable = record["reason"]
        if record["status"] != "ok":
            runner = None  # a failed point must not poison the next one
        write_record(record, Path(point["result_out"]))
        status = f"{record['status']} {record['reason'] or ''}"
        print(f"{point['scenario']} {point['batch_size']}: {status}")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m reproscope.runtime.infer JOB.json|'{...}'", file=sys.stderr)
        return 2
    text = argv[1] if argv[1].lstrip().startswith("{") else Path(argv[1]).read_text()
    parsed = InferenceJob.from_json(text)
    if parsed.huge_pages is not None:  # timing jobs; may re-execute this process
        memory.apply(parsed.huge_pages)
    # Pinned before the framework is imported, so that its thread pools inherit the set.
    pin_cpus(parsed.threads)
    if parsed.points:
        run_group(parsed)
        return 0
    job = parsed.to_dict()
    record, _ = run_job(job)
    write_record(record, Path(job["result_out"]))
    print(f"{job['mode']} {job.get('batch_size')}: {record['status']} {record['reason'] or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
