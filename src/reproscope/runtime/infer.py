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

from reproscope.runtime import launch, memory
from reproscope.runtime.accuracy import accuracy_pass
from reproscope.runtime.atomic import write_text
from reproscope.runtime.cache import Cache
from reproscope.runtime.fingerprint import system_fingerprint
from reproscope.runtime.integrity import Damaged, verified_env_identity, verified_sha256
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.latency import BREAKDOWN_ITERATIONS, latency_run, measures_breakdown
from reproscope.runtime.noise import pin_cpus
from reproscope.runtime.peak import measure_peak_gflops
from reproscope.runtime.runners import FRAMEWORKS, DeviceUnavailable, Runner, make_runner
from reproscope.runtime.tensorize import finish


def provenance(job: InferenceJob) -> dict[str, Any]:
    """The system fingerprint, the memory policy in force and the hashes of what the job
    read (once per process: a round's points share it)."""
    recorded = list(FRAMEWORKS[job.framework].recorded)
    fingerprint = system_fingerprint(job.threads, recorded)
    fingerprint["cpu_set"] = (
        sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    )
    found = {
        "fingerprint": fingerprint,
        # checked against the digests recorded when they were made, before any is used
        "artifact_sha256": verified_sha256(job.artifact),
        "inputs_sha256": Cache(job.inputs).content_sha256(),  # again once read (run_job)
        "env_lock_sha256": verified_env_identity(job.env_lock),
    }
    if job.huge_pages is not None:
        found["memory"] = memory.describe(job.huge_pages)
    return found


def run_job(
    job: InferenceJob, runner: Runner | None = None, known: dict[str, Any] | None = None
) -> tuple[dict[str, Any], Runner | None]:
    """One job; a grouped job passes the runner it already loaded (load_s is then ~0)
    and the provenance it already computed."""
    started = time.perf_counter()
    record: dict[str, Any] = {"job": job.to_dict(), "status": "ok", "reason": None}
    record.update(copy.deepcopy(known) if known else provenance(job))
    cache = Cache(job.inputs)
    try:
        if runner is None:
            runner = make_runner(job.framework)
            runner.load(Path(job.artifact), job)
        record["runner"] = runner.info()
        record["load_s"] = time.perf_counter() - started
        fingerprint = record["fingerprint"]
        if job.mode == "latency" and "peak_gflops" not in fingerprint:
            # After load: the runner has set the framework's thread count.
            peak = measure_peak_gflops(runner.gemm())
            fingerprint.update(peak_gflops=peak["peak_gflops"], peak_method=peak["method"])
        if job.mode == "accuracy":
            record["metrics"] = accuracy_pass(runner, cache, job)
            record["metrics"]["verify_seconds"] = cache.verify_seconds  # benchmarks/verify_cost.py
        else:
            inputs = finish(cache.first(job.batch_size), job.tensor)
            record["metrics"] = latency_run(runner, inputs, job)
        record["inputs_sha256"] = cache.content_sha256()  # of the chunks read and checked
    except Damaged:
        raise  # damaged input ends the job: no result is computed from it
    except DeviceUnavailable as exc:
        record.update(status="unavailable", reason=f"device {job.device}: {exc}")
    except Exception as exc:  # a failure of the measured system becomes a result row
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
    if record["status"] != "ok" and job.mode == "accuracy":
        for path in (job.logits_out, job.topk_out):  # outputs must exist for Snakemake
            np.save(path, np.zeros((0,), dtype=np.float32))
    record["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    record["wall_s"] = time.perf_counter() - started
    return record, runner


def write_record(record: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)  # a point's folder inside its round's
    write_text(out, json.dumps(record, indent=1, sort_keys=True, default=str))


def estimated_point_s(record: dict[str, Any], job: InferenceJob) -> float:
    """Wall time of the next point, from the last measured one: latency grows at most
    linearly with the batch; warm-up, the timed run and any breakdown batches."""
    metrics = record.get("metrics", {})
    if not metrics.get("p50_ms") or not metrics.get("batch_size"):
        return 0.0
    per_batch_s = metrics["p50_ms"] / 1e3 * job.batch_size / metrics["batch_size"]
    timing = job.timing
    timed = max(timing["min_duration_s"], timing["min_queries"] * per_batch_s)
    extra = timing["warmup"]
    if measures_breakdown(job):
        extra += BREAKDOWN_ITERATIONS
    return min(timed, timing["max_duration_s"]) + extra * per_batch_s


def run_group(group: InferenceJob) -> None:
    """All timing points of one configuration in one round, in one process: the framework
    is imported and the model loaded once. Each point keeps its own result.
    With timing.group_budget_s, a point that would not fit in what is left of the budget
    is written as 'skipped' with its estimate (and so is every larger one)."""
    runner = None
    unavailable = None
    known = provenance(group)
    budget = (group.timing or {}).get("group_budget_s")
    started, last = time.perf_counter(), None
    for point in group.point_jobs():
        recorded = point.to_dict()
        left = budget - (time.perf_counter() - started) if budget else None
        estimate = estimated_point_s(last, point) if budget and last else 0.0
        if unavailable:  # the device does not exist: no point can run on it
            record = {"job": recorded, **known, "status": "unavailable", "reason": unavailable}
        elif left is not None and (left <= 0 or estimate > left):
            record = {
                "job": recorded,
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
        write_record(record, Path(point.result_out))
        print(f"{point.scenario} {point.batch_size}: {record['status']} {record['reason'] or ''}")


def main(argv: list[str]) -> int:
    text = launch.job_argument(argv, "reproscope.runtime.infer")
    if text is None:
        return 2
    job = InferenceJob.from_json(text)
    if job.huge_pages is not None:  # timing jobs; may re-execute this process
        memory.apply(job.huge_pages)
    # Pinned before the framework is imported, so that its thread pools inherit the set.
    pin_cpus(job.threads)
    try:
        if job.points:
            run_group(job)
            return 0
        record, _ = run_job(job)
    except Damaged as exc:
        print(f"reproscope: refused: {exc}", file=sys.stderr)
        return 1
    write_record(record, Path(job.result_out))
    print(f"{job.mode} {job.batch_size}: {record['status']} {record['reason'] or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
