"""Machine noise during a measurement, and pinning.

Env-side (standard library and numpy only). Three checks, each against one threshold
(``noise_threshold``, default 10 %), over the point's own window (the scenario, without the
calibration loops), on the CPUs the job is pinned to:

- ``other_cpu_share``: the CPU time other processes (and the kernel on their behalf) used on
  the job's CPUs, as a share of those CPUs' time: their busy time from the per-CPU lines of
  ``/proc/stat`` less this process's own CPU time (``getrusage``: every thread). This sees
  another process taking the cores, which the calibration loop and steal cannot (a one-core
  burner beside a 2-CPU job reads ~0.25-0.5). /proc/stat counts in clock ticks (10 ms), so a
  0.3 s point on 2 CPUs reads to a few per cent. A sibling hyperthread outside the job's set
  is not seen.
- ``steal_share``: the share of those CPUs' time the hypervisor gave to other guests.
- the calibration loop, a fixed amount of single-threaded work timed before and after the
  point: when it slows down, something else was using the machine.

A point is ``noisy`` when any exceeds the threshold; ``noise_reason`` and ``reasons`` say which.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

NOISE_THRESHOLD = 0.10
#: Fields of a /proc/stat cpu line (user nice system idle iowait irq softirq steal guest
#: guest_nice): busy ones (guest time is already counted in user) and steal.
BUSY_FIELDS = (0, 1, 2, 5, 6)
STEAL_FIELD = 7
#: How long one look at the CPUs lasts while waiting for them to be quiet.
QUIET_WINDOW_S = 0.5


def cpu_times(cpus: list[int] | None = None, stat: str = "/proc/stat") -> list[int] | None:
    """Clock ticks of /proc/stat's first 8 fields, summed over ``cpus`` (their ``cpuN``
    lines), or the aggregate ``cpu`` line when None; None where there is no such file or a
    CPU has no line."""
    wanted = {"cpu"} if cpus is None else {f"cpu{c}" for c in cpus}
    found: dict[str, list[int]] = {}
    try:
        with open(stat) as f:
            for line in f:
                if not line.startswith("cpu"):
                    break  # the cpu lines come first
                fields = line.split()
                if fields[0] in wanted and len(fields) > STEAL_FIELD:
                    found[fields[0]] = [int(v) for v in fields[1 : STEAL_FIELD + 2]]
    except (OSError, ValueError):
        return None
    if set(found) != wanted:
        return None
    return [sum(column) for column in zip(*found.values(), strict=True)]


def own_cpu_s() -> float:
    """CPU time this process has used, every thread, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def job_cpus() -> list[int] | None:
    """The CPUs this process may run on (its pinned set), or None where that is unknown."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


@dataclass(frozen=True)
class CpuSnapshot:
    ticks: list[int] | None
    own_s: float

    @classmethod
    def take(cls, cpus: list[int] | None) -> CpuSnapshot:
        return cls(cpu_times(cpus), own_cpu_s())


def cpu_shares(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float | None]:
    """Shares of the CPUs' time between two snapshots: stolen by the hypervisor, used by
    other processes, used by this one (None without /proc/stat)."""
    if before.ticks is None or after.ticks is None:
        return {"steal_share": None, "other_cpu_share": None, "own_cpu_share": None}
    delta = [b - a for a, b in zip(before.ticks, after.ticks, strict=True)]
    total = sum(delta)
    if total <= 0:  # shorter than a clock tick
        return {"steal_share": 0.0, "other_cpu_share": 0.0, "own_cpu_share": 0.0}
    total_s = total / os.sysconf("SC_CLK_TCK")
    busy_s = sum(delta[i] for i in BUSY_FIELDS) / os.sysconf("SC_CLK_TCK")
    own = after.own_s - before.own_s
    return {
        "steal_share": delta[STEAL_FIELD] / total,
        "other_cpu_share": max(0.0, busy_s - own) / total_s,
        "own_cpu_share": own / total_s,
    }


def share_reasons(
    shares: dict[str, float | None], cpus: list[int] | None, threshold: float
) -> list[str]:
    """What of ``cpu_shares`` is past ``threshold``: other processes on ``cpus``, steal."""
    other, steal = shares["other_cpu_share"], shares["steal_share"]
    where = "CPU " + ",".join(map(str, cpus)) if cpus else "the CPUs"
    reasons = []
    if other is not None and other > threshold:
        reasons.append(f"other processes used {100 * other:.1f} % of {where}")
    if steal is not None and steal > threshold:
        reasons.append(f"CPU steal {100 * steal:.1f} %")
    return reasons


def wait_for_quiet(
    cpus: list[int] | None, threshold: float, max_wait_s: float
) -> tuple[float, float | None]:
    """Wait, up to ``max_wait_s``, until other processes use at most ``threshold`` of the
    CPUs over one window; returns (seconds waited, the last window's other_cpu_share)."""
    started = time.perf_counter()
    share = None
    while time.perf_counter() - started < max_wait_s:
        before = CpuSnapshot.take(cpus)
        time.sleep(min(QUIET_WINDOW_S, max_wait_s))
        share = cpu_shares(before, CpuSnapshot.take(cpus))["other_cpu_share"]
        if share is None or share <= threshold:
            break
    return time.perf_counter() - started, share


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
    """``with NoiseMonitor() as m: ...`` then ``m.summary()``; ``cpus``: the job's CPUs
    (default: this process's set)."""

    def __init__(self, threshold: float = NOISE_THRESHOLD, cpus: list[int] | None = None) -> None:
        self.threshold = threshold
        self.cpus = cpus if cpus is not None else job_cpus()

    def __enter__(self) -> NoiseMonitor:
        self.calibration_before_ms = calibration_ms()
        self.started = time.perf_counter()
        self.before = CpuSnapshot.take(self.cpus)
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = CpuSnapshot.take(self.cpus)
        self.window_s = time.perf_counter() - self.started
        self.calibration_after_ms = calibration_ms()

    def summary(self) -> dict[str, Any]:
        shares = cpu_shares(self.before, self.after)
        drift = self.calibration_after_ms / self.calibration_before_ms - 1.0
        reasons = share_reasons(shares, self.cpus, self.threshold)
        if abs(drift) > self.threshold:
            reasons.append(f"calibration loop changed {100 * drift:+.1f} %")
        return {
            **shares,
            "cpus": self.cpus,
            "window_s": self.window_s,
            "calibration_before_ms": self.calibration_before_ms,
            "calibration_after_ms": self.calibration_after_ms,
            "calibration_drift": drift,
            "threshold": self.threshold,
            "noisy": bool(reasons),
            "noise_reason": "; ".join(reasons) or None,
            "reasons": reasons,
        }


def severity(summary: dict[str, Any]) -> float:
    """A summary's largest check as a multiple of its threshold (> 1: noisy)."""
    checks = [summary["other_cpu_share"], summary["steal_share"], abs(summary["calibration_drift"])]
    return max(value for value in checks if value is not None) / summary["threshold"]


def pin_cpus(threads: int) -> list[int]:
    """Pin this process to ``threads`` CPUs of those it may use (the lowest-numbered,
    CPU 0 last: it takes most interrupts); returns the CPU set now in force."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    allowed = sorted(os.sched_getaffinity(0), key=lambda cpu: (cpu == 0, cpu))
    chosen = sorted(allowed[: max(1, threads)])
    os.sched_setaffinity(0, chosen)
    return chosen
