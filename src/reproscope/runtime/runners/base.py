"""The runner interface: load an artifact on a device, run one batch, synchronise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reproscope.runtime.jobs import InferenceJob


class DeviceUnavailable(RuntimeError):
    """The requested device does not exist on this system; reported, not a crash."""


class Runner(Protocol):
    framework: str

    def load(self, artifact: Path, job: InferenceJob) -> None:
        """Load the artifact on job.device with job.threads CPU threads."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch and return host logits; device work is finished on return."""

    def run_stages(self, batch: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """run() split into h2d_ms, compute_ms and d2h_ms; copies are 0 on the CPU."""

    def info(self) -> dict[str, Any]:
        """Framework versions and every setting that can change speed or results."""

    def gemm(self) -> tuple[Callable[[], Any], str]:
        """A float32 GEMM of reproscope.runtime.peak's size through this framework, on the loaded
        device and settings, waiting for its result; and how it is done (for the record)."""


def stage_ms(t0: int, t1: int, t2: int, t3: int, device: str) -> dict[str, float]:
    """Stage durations from perf_counter_ns stamps. On the CPU the input already lives in
    host memory, so the copies are reported as exactly 0 (what was timed there is the
    framework's tensor wrapping, counted as compute)."""
    if device == "cpu":
        return {"h2d_ms": 0.0, "compute_ms": (t3 - t0) / 1e6, "d2h_ms": 0.0}
    return {"h2d_ms": (t1 - t0) / 1e6, "compute_ms": (t2 - t1) / 1e6, "d2h_ms": (t3 - t2) / 1e6}
