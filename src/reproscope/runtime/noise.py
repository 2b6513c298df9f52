"""Machine noise during a measurement: CPU steal and a fixed calibration loop, and pinning.

Env-side (standard library and numpy only). ``steal_share`` is the share of CPU time the
hypervisor gave to other guests (``steal`` in ``/proc/stat``) between two snapshots. The
calibration loop is a fixed amount of single-threaded work timed before and after a run:
when it slows down, something else was using the machine. A run is ``noisy`` when either
exceeds the threshold (default 10 %).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

NOISE_THRESHOLD = 0.10


def cpu_times(stat: str = "/proc/stat") -> list[int] | None:
    """The aggregate ``cpu`` line of /proc/stat (user nice system idle iowait irq softirq
    steal ...) in clock ticks, or None where there is no such file."""
    try:
        with open(stat) as f:
            fields = f.readline().split()
    except OSError:
        return None
    return [int(v) for v in fields[1:]] if fields and fields[0] == "cpu" else None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of CPU time stolen between two :func:`cpu_times` snapshots."""
    if before is None or after is None or len(before) < 8:
        return None
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta[:8])  # guest time is already counted in user
    return delta[7] / total if total > 0 else 0.0


def _workload() -> int:
    total = 0
    for i in range(200_000):
        total += i * i % 7
    return total


def calibration_ms(repeats: int = 5) -> float:
    """Median time of a fixed single-threaded pure-Python workload (no BLAS threads, which
    would measure the BLAS's threading instead of the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        _workload()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return float(np.median(times))


class NoiseMonitor:
    """``with NoiseMonitor() as m: ...`` then ``m.summary()``."""

    def __init__(self, threshold: float = NOISE_THRESHOLD) -> None:
        self.threshold = threshold

    def __enter__(self) -> NoiseMonitor:
        self.calibration_before_ms = calibration_ms()
        self.times_before = cpu_times()
        return self

    def __exit__(self, *exc: object) -> None:
        self.times_after = cpu_times()
        self.calibration_after_ms = calibration_ms()

    def summary(self) -> dict[str, Any]:
        steal = steal_share(self.times_before, self.times_after)
        drift = self.calibration_after_ms / self.calibration_before_ms - 1.0
        reasons = []
        if steal is not None and steal > self.threshold:
            reasons.append(f"CPU steal {100 * steal:.1f} %")
        if abs(drift) > self.threshold:
            reasons.append(f"calibration loop changed {100 * drift:+.1f} %")
        return {
            "steal_share": steal,
            "calibration_before_ms": self.calibration_before_ms,
            "calibration_after_ms": self.calibration_after_ms,
            "calibration_drift": drift,
            "threshold": self.threshold,
            "noisy": bool(reasons),
            "noise_reason": "; ".join(reasons) or None,
        }


def pin_cpus(threads: int) -> list[int]:
    """Pin this process to ``threads`` CPUs of those it may use (the lowest-numbered);
    returns the CPU set now in force."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[: max(1, threads)]
    os.sched_setaffinity(0, chosen)
    return chosen
