"""An accuracy pass: logits and top-k of a shard of the geometric cache, streamed to .npy."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import numpy as np

from reproscope.runtime.cache import Cache, NpyWriter
from reproscope.runtime.jobs import InferenceJob
from reproscope.runtime.runners.base import Runner
from reproscope.runtime.shards import shard_range
from reproscope.runtime.tensorize import finish

PROGRESS_EVERY_S = 10.0


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest logits; ties go to the lower index (stable sort)."""
    return np.argsort(-logits, axis=1, kind="stable")[:, :k].astype(np.int32)


def accuracy_pass(
    runner: Runner, cache: Cache, job: InferenceJob, progress: TextIO = sys.stdout
) -> dict[str, Any]:
    """Logits and top-k of images [start, stop) of the cache, streamed batch by batch into
    .npy files: memory holds one batch, whatever the number of images."""
    batch_size, k = job.batch_size, job.top_k
    shard, shards = (0, 1) if job.shard is None else job.shard
    start, stop = shard_range(len(cache), batch_size, shard, shards)
    n = max(stop - start, 0)
    logits_out = topk_out = None
    began = time.perf_counter()
    compute = 0.0
    next_report = began + PROGRESS_EVERY_S
    for offset, pixels in cache.batches(batch_size, start, stop):
        batch = finish(pixels, job.tensor)
        t0 = time.perf_counter()
        logits = np.asarray(runner.run(batch), dtype=np.float32)
        compute += time.perf_counter() - t0
        if logits_out is None:
            logits_out = NpyWriter(job.logits_out, np.float32, (n, *logits.shape[1:]))
            topk_out = NpyWriter(job.topk_out, np.int32, (n, k))
        logits_out.write(logits)
        topk_out.write(top_k(logits, k))
        done = offset - start + len(logits)
        if time.perf_counter() >= next_report or done == n:
            rate = done / (time.perf_counter() - began)
            print(f"accuracy: {done}/{n} images, {rate:.1f} img/s", file=progress, flush=True)
            next_report = time.perf_counter() + PROGRESS_EVERY_S
    if logits_out is None:  # no image in range: empty outputs, which Snakemake expects
        np.save(job.logits_out, np.zeros((0,), dtype=np.float32))
        np.save(job.topk_out, np.zeros((0, k), dtype=np.int32))
    else:
        logits_out.close()
        topk_out.close()
    return {
        "n_images": n,
        "first_image": start,
        "seconds": time.perf_counter() - began,
        "compute_seconds": compute,
    }
