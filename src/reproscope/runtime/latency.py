"""A timing point: its scenario under the noise monitor (and, on CUDA, the GPU sampler),
measured again while it is disturbed, and at the points that carry it the end-to-end
breakdown of one batch.

Re-measurement instead of averaging the damage: an attempt is disturbed when other processes
used the job's CPUs, the hypervisor stole them or the calibration loop drifted
(reproscope.runtime.noise, each past ``noise_threshold``), or when its figure lies beyond
``1 +- timing.outlier_threshold`` (0.25) times the median of the same point's earlier rounds
(2 at least). A disturbed attempt is followed by another, up to ``timing.remeasure`` more
(default 2), each after waiting up to ``timing.remeasure_wait_s`` (10 s) for other processes
to leave the CPUs, while this process (one configuration in one round) has spent less than
``timing.remeasure_budget_s`` (30 s) on waits and re-measurements: a machine that stays busy
cannot multiply a round's time. The point's figure is its first undisturbed attempt; when
every attempt is disturbed, the least disturbed one (the smallest check as a multiple of its
threshold), and the row still says so. The record keeps every attempt (``attempts``), which
one counts (``counted_attempt``) and why (``disturbed_reasons``, ``remeasure_stopped``). The
outlier test prefers figures near the earlier rounds' only over attempts already 25 % away
from them, five times the ~5 % a figure moves between fresh processes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from reproscope.runtime import layout, scenarios
from reproscope.runtime.accuracy import top_k
from reproscope.runtime.cache import Cache
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.noise import (
    NOISE_THRESHOLD,
    NoiseMonitor,
    job_cpus,
    severity,
    wait_for_quiet,
)
from reproscope.runtime.resources import GpuSampler
from reproscope.runtime.rounds import SCENARIO_METRIC, earlier_figures, figure
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.tensorize import batch_of, finish

BREAKDOWN_ITERATIONS = 3
#: timing.remeasure, remeasure_wait_s, remeasure_budget_s, outlier_threshold (module docstring).
REMEASURE = 2
REMEASURE_WAIT_S = 10.0
REMEASURE_BUDGET_S = 30.0
OUTLIER_THRESHOLD = 0.25
#: Against one earlier round, which of the two figures is off is unknown.
MIN_EARLIER_ROUNDS = 2


def measures_breakdown(job: InferenceJob) -> bool:
    """The breakdown describes a configuration and is never compared: it is measured at the
    FixedBatch points (what the breakdown plot and the system ranking read) of the first
    round only. In every point of every round it took 7 % of a round's time."""
    return job.scenario == "FixedBatch" and not job.repeat


def breakdown(runner: Runner, inputs: np.ndarray, job: InferenceJob) -> dict[str, float]:
    """Median end-to-end parts of one batch: input preparation (measured by the preprocess
    job, per image), copies, compute and post-processing (top-k)."""
    batch = batch_of(inputs, job.batch_size)
    parts: dict[str, list[float]] = {}
    for _ in range(BREAKDOWN_ITERATIONS):
        logits, stages = runner.run_stages(batch)
        t0 = time.perf_counter_ns()
        top_k(logits, job.top_k)
        stages["postprocess_ms"] = (time.perf_counter_ns() - t0) / 1e6
        for key, value in stages.items():
            parts.setdefault(key, []).append(value)
    medians = {key: float(np.median(values)) for key, values in parts.items()}
    cache = Cache(job.inputs)
    pixels = batch_of(cache.first(job.batch_size), job.batch_size)
    t0 = time.perf_counter_ns()
    finish(pixels, job.tensor)
    finish_ms = (time.perf_counter_ns() - t0) / 1e6
    # decoding and resizing, measured per image by the preprocess job; then the
    # per-pixel stages (normalisation, layout) of this batch, measured here
    medians["preprocess_ms"] = cache.index["seconds_per_image"] * 1e3 * job.batch_size
    medians["preprocess_ms"] += finish_ms
    return medians


#: Seconds this process has spent on waits and re-measurements (timing.remeasure_budget_s).
_remeasured_s = [0.0]


def measure(
    runner: Runner, inputs: np.ndarray, job: InferenceJob, threshold: float
) -> dict[str, Any]:
    """One attempt at a point: its scenario under the noise monitor (and the GPU sampler)."""
    sampler = GpuSampler() if job.device == "cuda" else None
    with NoiseMonitor(threshold) as noise:
        if sampler is None:
            metrics = scenarios.run(runner, job, inputs)
        else:
            with sampler:
                metrics = scenarios.run(runner, job, inputs)
    metrics["noise"] = noise.summary()
    if sampler is not None:
        gpu = sampler.summary()
        images = metrics["n_iterations"] * metrics.get("samples_per_query", job.batch_size)
        gpu["energy_per_inference_j"] = (
            sampler.energy_per_inference_j(images) if sampler.available else None
        )
        metrics["gpu"] = gpu
    return metrics


def outlier(
    value: float | None, earlier: list[float], limit: float, metric: str
) -> tuple[float, str | None]:
    """How far a figure lies from the median of the earlier rounds', as a multiple of
    ``limit`` on the log scale (> 1: an outlier), and the reason when it is one."""
    if value is None or len(earlier) < MIN_EARLIER_ROUNDS:
        return 0.0, None
    reference = float(np.median(earlier))
    distance = abs(math.log(value / reference)) / math.log1p(limit)
    if distance <= 1:
        return distance, None
    return distance, (
        f"{metric} {value:.4g} is {value / reference:.2f}x the median of "
        f"{len(earlier)} earlier rounds ({reference:.4g})"
    )


def attempt_job(job: InferenceJob, attempt: int) -> InferenceJob:
    """The job of a re-measurement: LoadGen's logs of each attempt in a folder of their own."""
    if not attempt or not job.loadgen_dir or not job.result_out:
        return job
    return dataclasses.replace(job, loadgen_dir=layout.loadgen_dir(job.result_out, attempt))


def latency_run(runner: Runner, inputs: np.ndarray, job: InferenceJob) -> dict[str, Any]:
    """A point, measured again while disturbed (module docstring): the counted attempt's
    metrics with ``attempts``, ``counted_attempt`` and ``disturbed_reasons``."""
    threshold = NOISE_THRESHOLD if job.noise_threshold is None else job.noise_threshold
    timing = job.timing or {}
    extra = int(timing.get("remeasure", REMEASURE))
    wait_limit = float(timing.get("remeasure_wait_s", REMEASURE_WAIT_S))
    budget = float(timing.get("remeasure_budget_s", REMEASURE_BUDGET_S))
    limit = float(timing.get("outlier_threshold", OUTLIER_THRESHOLD))
    metric = SCENARIO_METRIC[job.scenario][0]
    earlier = earlier_figures(job) if job.repeat else []
    attempts: list[dict[str, Any]] = []
    measured: list[dict[str, Any]] = []
    stopped = None
    for attempt in range(1 + extra):
        waited_s, quiet_share = 0.0, None
        started = time.perf_counter()
        if attempt:
            # what is left once another attempt, as long as the first, has run
            left = budget - _remeasured_s[0] - attempts[0]["wall_s"]
            if left < 0:
                stopped = f"timing.remeasure_budget_s={budget:g} spent by this process"
                break
            waited_s, quiet_share = wait_for_quiet(job_cpus(), threshold, min(wait_limit, left))
        this_job = attempt_job(job, attempt)
        start_unix = time.time()  # when it ran, to tell what overlapped what
        metrics = measure(runner, inputs, this_job, threshold)
        value = figure(metrics, job.scenario)
        distance, far = outlier(value, earlier, limit, metric)
        reasons = metrics["noise"]["reasons"] + ([far] if far else [])
        attempts.append(
            {
                "attempt": attempt,
                "metric": metric,
                "value": value,
                "disturbed_reasons": reasons,
                "severity": max(severity(metrics["noise"]), distance),
                "waited_s": waited_s,
                "other_cpu_share_before": quiet_share,
                "wall_s": time.perf_counter() - started - waited_s,
                "start_unix": start_unix,
                "end_unix": time.time(),
                "loadgen_dir": this_job.loadgen_dir,
                "noise": metrics["noise"],
            }
        )
        measured.append(metrics)
        if attempt:
            _remeasured_s[0] += time.perf_counter() - started
        if not reasons:
            break
    counted = min(range(len(attempts)), key=lambda i: attempts[i]["severity"])
    for i, (record, metrics) in enumerate(zip(attempts, measured, strict=True)):
        if i != counted:  # the counted attempt's metrics are the point's
            record["metrics"] = {k: v for k, v in metrics.items() if k != "noise"}
    metrics = measured[counted]
    metrics.update(
        attempts=attempts,
        counted_attempt=counted,
        disturbed_reasons=attempts[counted]["disturbed_reasons"],
        remeasure_stopped=stopped,
        earlier_rounds={"metric": metric, "values": earlier, "outlier_threshold": limit},
    )
    if measures_breakdown(job):
        metrics["breakdown"] = breakdown(runner, inputs, job)
    return metrics
