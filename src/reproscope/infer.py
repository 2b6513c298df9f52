"""One inference job, run inside its pinned environment: `python -m reproscope.infer JOB.json`.

Env-side: imports only the standard library, numpy and the job's framework. A failure
in the measured system (absent device, out of memory, missing operator) is written as a
result with its status and reason, so the rest of the study completes.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from reproscope.fingerprint import system_fingerprint
from reproscope.scenarios import StopRule, run_offline
from reproscope.stats import summarize

FRAMEWORK_PACKAGES = {
    "pytorch": ["torch"],
    "onnxruntime": ["onnxruntime", "onnxruntime-gpu", "onnx"],
    "tensorflow": ["tensorflow", "tensorflow-cpu", "keras"],
}


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def latency_run(runner: Any, inputs: np.ndarray, job: dict[str, Any]) -> dict[str, Any]:
    timing = job["timing"]
    batch = batch_of(inputs, job["batch_size"])
    rule = StopRule(timing["min_duration_s"], timing["min_queries"], timing["max_duration_s"])
    result = run_offline(lambda _n: runner.run(batch), job["batch_size"], timing["warmup"], rule)
    summary = summarize(result.latencies_ms)
    return {
        **summary,
        "scenario": "Offline",
        "batch_size": job["batch_size"],
        "n_iterations": result.n_queries,
        "throughput_ips": result.throughput_sps,
        "duration_s": result.duration_s,
        "stopped_by": result.stopped_by,
        "timed_share": result.timed_share,
        "warmup_s": result.warmup_s,
        "latencies_ms": [round(x, 6) for x in result.latencies_ms],
    }


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from reproscope.runners import DeviceUnavailable, make_runner

    started = time.perf_counter()
    record: dict[str, Any] = {"job": job, "status": "ok", "reason": None}
    record["fingerprint"] = system_fingerprint(job["threads"], FRAMEWORK_PACKAGES[job["framework"]])
    record["artifact_sha256"] = sha256_file(job["artifact"])
    record["inputs_sha256"] = sha256_file(job["inputs"])
    record["env_lock_sha256"] = sha256_file(job["env_lock"])
    inputs = np.load(job["inputs"], mmap_mode="r")
    try:
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
    return record


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m reproscope.infer JOB.json|'{...}'", file=sys.stderr)
        return 2
    text = argv[1] if argv[1].lstrip().startswith("{") else Path(argv[1]).read_text()
    job = json.loads(text)
    record = run_job(job)
    out = Path(job["result_out"])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    os.replace(tmp, out)
    print(f"{job['mode']} {job.get('batch_size')}: {record['status']} {record['reason'] or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
