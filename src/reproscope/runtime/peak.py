"""The practical float32 peak of a runner: a calibrated large GEMM through the framework's
own matrix multiply, on the job's device and at its thread count (PyTorch: torch.mm;
TensorFlow: tf.linalg.matmul; ONNX Runtime: a one-node MatMul graph in a session with the
model's options and providers), so that ``achieved / peak`` compares a model with the same
kernels' library at their best.

Env-side. This is one framework's own figure at one size, kept as provenance of a timing
job: a workload can beat it (another kernel, another size), so the study's limit, the one
shares are taken of, is the best over frameworks and sizes that reproscope.runtime.limits
measures. Calibration (best_seconds, shared with the limits): the number of products per
timing is doubled until one timing lasts >= 0.1 s; the best of 5 timings counts (the peak is
the least disturbed run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

GEMM_N = 1024
MIN_TIMING_S = 0.1
ONNX_FLOAT = 1  # TensorProto.FLOAT


def gemm_operand(n: int = GEMM_N) -> np.ndarray:
    return np.random.default_rng(0).random((n, n), dtype=np.float32)


def _field(number: int, payload: bytes | int) -> bytes:
    """One protobuf field: a varint (wire type 0) or length-delimited bytes (wire type 2)."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def onnx_matmul_model(n: int = GEMM_N, opset: int = 13) -> bytes:
    """A serialised ONNX ModelProto computing C = A @ B for float32 A, B of shape (n, n).

    Written field by field (onnx.proto numbering) so that an ONNX Runtime environment
    needs no `onnx` package to measure its peak.
    """
    dims = _field(1, _field(1, n)) * 2  # TensorShapeProto.dim { dim_value }
    tensor = _field(1, _field(1, ONNX_FLOAT) + _field(2, dims))  # TypeProto.tensor_type

    def value(name: str) -> bytes:  # ValueInfoProto { name, type }
        return _field(1, name.encode()) + _field(2, tensor)

    node = _field(1, b"A") + _field(1, b"B") + _field(2, b"C") + _field(4, b"MatMul")
    graph = (
        _field(1, node)
        + _field(2, b"gemm")
        + _field(11, value("A"))
        + _field(11, value("B"))
        + _field(12, value("C"))
    )
    opset_import = _field(2, opset)  # OperatorSetIdProto { version }, default domain
    return _field(1, 8) + _field(7, graph) + _field(8, opset_import)  # IR version 8


def best_seconds(
    call: Callable[[], Any], repeats: int, min_timing_s: float = MIN_TIMING_S
) -> tuple[float, float]:
    """(fastest seconds per call, spread) of ``call``: the number of calls per timing is
    doubled until one timing lasts >= min_timing_s, then ``repeats`` timings are taken
    (the calibrating one among them); spread is (slowest - fastest) / fastest."""
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            call()
        elapsed = time.perf_counter() - start
        if elapsed >= min_timing_s:
            break
        count *= 2
    timings = [elapsed]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(count):
            call()
        timings.append(time.perf_counter() - start)
    best = min(timings)
    return best / count, (max(timings) - best) / best


def measure_peak_gflops(
    gemm: tuple[Callable[[], Any], str],
    repeats: int = 5,
    n: int = GEMM_N,
    min_timing_s: float = MIN_TIMING_S,
) -> dict[str, Any]:
    """``{"peak_gflops", "method", "spread", "seconds"}`` of a runner's ``gemm()``: a
    (product, description) pair whose product multiplies two n x n float32 matrices and
    waits for the result. ``spread`` is (slowest - fastest) / fastest over the repeats;
    ``seconds`` the time the measurement took, warm-up call included."""
    started = time.perf_counter()
    product, how = gemm
    product()  # first call: allocation, thread pool start
    seconds, spread = best_seconds(product, repeats, min_timing_s)
    return {
        "peak_gflops": 2.0 * n**3 / seconds / 1e9,
        "method": f"float32 GEMM {n}x{n}, {how}, best of {repeats}",
        "spread": spread,
        "seconds": time.perf_counter() - started,
    }
