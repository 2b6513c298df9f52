"""The practical float32 peak of this machine: a calibrated large GEMM through the
framework's own matrix multiply (PyTorch: torch.mm; TensorFlow: tf.linalg.matmul; ONNX
Runtime, which runs no operator outside a graph: numpy's BLAS), at the job's thread count.

Env-side. The theoretical peak needs a maximum clock frequency that VMs do not expose;
this is what the machine actually delivers, so ``achieved / peak`` is a fraction of a
measured ceiling. Calibration: the number of products per timing is raised until one timing
lasts >= 0.1 s; the best of 5 timings counts (the peak is the least disturbed run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

GEMM_N = 1024
MIN_TIMING_S = 0.1


def _matmul(framework: str) -> tuple[Callable[[], Any], str]:
    a = np.random.default_rng(0).random((GEMM_N, GEMM_N), dtype=np.float32)
    if framework == "pytorch":
        import torch

        ta = torch.from_numpy(a)
        return (lambda: torch.mm(ta, ta)), f"torch.mm {torch.__version__}"
    if framework == "tensorflow":
        import tensorflow as tf

        ta = tf.constant(a)
        return (lambda: tf.linalg.matmul(ta, ta).numpy()), f"tf.linalg.matmul {tf.__version__}"
    return (lambda: a @ a), f"numpy.matmul {np.__version__}"


def measure_peak_gflops(framework: str, repeats: int = 5) -> dict[str, Any]:
    """``{"peak_gflops", "method"}`` for float32 GEMM at the current thread settings."""
    product, how = _matmul(framework)
    product()  # first call: allocation, thread pool start
    flops = 2.0 * GEMM_N**3
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            product()
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_TIMING_S:
            break
        count *= 2
    best = elapsed
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(count):
            product()
        best = min(best, time.perf_counter() - start)
    return {
        "peak_gflops": flops * count / best / 1e9,
        "method": f"float32 GEMM {GEMM_N}x{GEMM_N}, {how}, best of {repeats} x {count}",
    }
