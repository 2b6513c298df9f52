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

from reproscope import layout
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
from reproscope.stats import summarize

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


def accuracy_pass(runner: Any, inputs: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    logits = [
        runner.run(np.ascontiguousarray(inputs[i : i + batch_size]))
        for i in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(logits).astype(np.float32), time.perf_counter() - start


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
    prepared = json.loads(Path(layout.preprocess_timing(job["inputs"])).read_text())
    medians["preprocess_ms"] = prepared["seconds_per_image"] * 1e3 * job["batch_size"]
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
        "inputs_sha256": sha256_file(job["inputs"]),
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
    inputs = np.load(job["inputs"], mmap_mode="r")
    try:
        if runner is None:
            runner = make_runner(job["framework"])
            runner.load(Path(job["artifact"]), job)
        record["runner"] = runner.info()
        record["load_s"] = time.perf_counter() - started
        if job["mode"] == "accuracy":
            logits, seconds = accuracy_pass(runner, inputs, job["batch_size"])
            np.save(job["logits_out"], logits)
            np.save(job["topk_out"], top_k(logits, job["top_k"]))
            record["metrics"] = {"n_images": int(len(logits)), "seconds": seconds}
        else:
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


def estimated_point_s(record: dict[str, Any], batch_size: int, job: dict[str, Any]) -> float:
    """Wall time of the next point, from the last measured one: latency grows at most
    linearly with the batch; warm-up, the timed run and the breakdown batches."""
    metrics = record["metrics"]
    per_batch_s = metrics["p50_ms"] / 1e3 * batch_size / metrics["batch_size"]
    timing = job["timing"]
    timed = max(timing["min_duration_s"], timing["min_queries"] * per_batch_s)
    extra = timing["warmup"] + job.get("breakdown_iterations", 3)
    return min(timed, timing["max_duration_s"]) + extra * per_batch_s


def run_group(job: dict[str, Any]) -> None:
    """Several batch sizes of one (model, environment, device) in one process: the
    framework is imported and the model loaded once. Each point keeps its own result.
    With timing.group_budget_s, a point that would not fit in what is left of the budget
    is written as 'skipped' with its estimate, and so is every larger one."""
    runner = None
    known = provenance(job)
    budget = job["timing"].get("group_budget_s")
    started, last = time.perf_counter(), None
    for batch_size, out in zip(job["batch_sizes"], job["result_outs"], strict=True):
        point = {**job, "batch_size": batch_size, "result_out": out, "grouped": True}
        del point["batch_sizes"], point["result_outs"]
        left = budget - (time.perf_counter() - started) if budget else None
        estimate = estimated_point_s(last, batch_size, point) if budget and last else 0.0
        if left is not None and (left <= 0 or estimate > left):
            record = {
                "job": point,
                **copy.deepcopy(known),
                "status": "skipped",
                "reason": f"time budget: estimated {estimate:.0f} s, {max(left, 0):.0f} s "
                f"of timing.group_budget_s={budget:g} left",
            }
            write_record(record, Path(out))
            print(f"{point['scenario']} {batch_size}: skipped {record['reason']}")
            continue
        record, runner = run_job(point, runner, known)
        last = record if record["status"] == "ok" else last
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
