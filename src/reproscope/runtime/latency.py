"""A timing point: its scenario under the noise monitor (and, on CUDA, the GPU sampler),
and at the points that carry it the end-to-end breakdown of one batch."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from reproscope.runtime import scenarios
from reproscope.runtime.accuracy import top_k
from reproscope.runtime.cache import Cache
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.noise import NOISE_THRESHOLD, NoiseMonitor
from reproscope.runtime.resources import GpuSampler
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.tensorize import batch_of, finish

BREAKDOWN_ITERATIONS = 3


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


def latency_run(runner: Runner, inputs: np.ndarray, job: InferenceJob) -> dict[str, Any]:
    sampler = GpuSampler() if job.device == "cuda" else None
    threshold = NOISE_THRESHOLD if job.noise_threshold is None else job.noise_threshold
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
    if measures_breakdown(job):
        metrics["breakdown"] = breakdown(runner, inputs, job)
    return metrics
