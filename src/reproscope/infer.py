"""One inference job, run inside its pinned environment: `python -m reproscope.infer JOB.json`.

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

from reproscope.cache import Cache, NpyWriter
from reproscope.fetch import sha256_file
from reproscope.fingerprint import system_fingerprint
from reproscope.flops import peak_gflops
from reproscope.jobs import InferenceJob
from reproscope.lockfile import env_identity
from reproscope.resources import GpuSampler
from reproscope.scenarios import (
    StopRule,
    find_max_server_rate,
    run_offline,
    run_single_stream,
)
from reproscope.shards import shard_range
from reproscope.stats import summarize
from reproscope.tensorize import finish

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


def run_scenario(runner: Any, inputs: np.ndarray, job: dict[str, Any]) -> dict[str, Any]:
    """One MLPerf-style scenario; returns its statistics and throughput."""
    timing, scenario = job["timing"], job["scenario"]
    rule = StopRule(timing["min_duration_s"], timing["min_queries"], timing["max_duration_s"])
    batch = batch_of(inputs, job["batch_size"])
    extra: dict[str, Any] = {}
    if scenario == "Offline":
        result = run_offline(_issue(runner, batch), job["batch_size"], timing["warmup"], rule)
    elif scenario == "SingleStream":
        result = run_single_stream(_issue(runner, batch), timing["warmup"], rule)
    else:
        server = job["server"]
        rate, trials = find_max_server_rate(
            _issue(runner, batch),
            server["latency_bound_ms"],
            timing["warmup"],
            rule,
            seed=server.get("seed", 0),
            low_qps=server["low_qps"],
            high_qps=server["high_qps"],
            iterations=server["iterations"],
        )
        passing = [t for t in trials if t.target_qps == rate] or trials[-1:]
        result = passing[-1]
        extra = {
            "server_max_qps": rate,
            "latency_bound_ms": server["latency_bound_ms"],
            "server_trials": [
                {"target_qps": t.target_qps, "p99_ms": summarize(t.latencies_ms)["p99_ms"]}
                for t in trials
            ],
        }
    return {
        **summarize(result.latencies_ms),
        **extra,
        "scenario": scenario,
        "batch_size": job["batch_size"],
        "n_iterations": result.n_queries,
        "throughput_ips": result.throughput_sps,
        "duration_s": result.duration_s,
        "stopped_by": result.stopped_by,
        "timed_share": result.timed_share,
        "warmup_s": result.warmup_s,
        "latencies_ms": [round(x, 6) for x in result.latencies_ms],
    }


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
    if sampler is None:
        metrics = run_scenario(runner, inputs, job)
    else:
        with sampler:
            metrics = run_scenario(runner, inputs, job)
        gpu = sampler.summary()
        images = metrics["n_iterations"] * job["batch_size"]
        gpu["energy_per_inference_j"] = (
            sampler.energy_per_inference_j(images) if sampler.available else None
        )
        metrics["gpu"] = gpu
    metrics["breakdown"] = breakdown(runner, inputs, job)
    return metrics


def provenance(job: dict[str, Any]) -> dict[str, Any]:
    """The system fingerprint and the hashes of what the job read."""
    fingerprint = system_fingerprint(job["threads"], FRAMEWORK_PACKAGES[job["framework"]])
    fingerprint["peak_gflops"] = peak_gflops()
    return {
        "fingerprint": fingerprint,
        "artifact_sha256": sha256_file(job["artifact"]),
        "inputs_sha256": Cache(job["inputs"]).content_sha256(),
        "env_lock_sha256": env_identity(job["env_lock"]),
    }


def run_job(
    job: dict[str, Any], runner: Any = None, known: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Any]:
    """One job; a grouped job passes the runner it already loaded (load_s is then ~0)
    and the provenance it already computed."""
    from reproscope.runners import DeviceUnavailable, make_runner

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
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    os.replace(tmp, out)


def run_group(job: dict[str, Any]) -> None:
    """Several batch sizes of one (model, environment, device) in one process: the
    framework is imported and the model loaded once. Each point keeps its own result."""
    runner = None
    known = provenance(job)
    for batch_size, out in zip(job["batch_sizes"], job["result_outs"], strict=True):
        point = {**job, "batch_size": batch_size, "result_out": out, "grouped": True}
        del point["batch_sizes"], point["result_outs"]
        record, runner = run_job(point, runner, known)
        if record["status"] != "ok":
            runner = None  # a failed point must not poison the next one
        write_record(record, Path(out))
        print(f"{point['scenario']} {batch_size}: {record['status']} {record['reason'] or ''}")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m reproscope.infer JOB.json|'{...}'", file=sys.stderr)
        return 2
    text = argv[1] if argv[1].lstrip().startswith("{") else Path(argv[1]).read_text()
    job = InferenceJob.from_json(text).to_dict()
    if "batch_sizes" in job:
        run_group(job)
        return 0
    record, _ = run_job(job)
    write_record(record, Path(job["result_out"]))
    print(f"{job['mode']} {job.get('batch_size')}: {record['status']} {record['reason'] or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
