"""System fingerprint of the machine a job runs on. Standard library only (env-side).

:func:`system_state` records, per timing process, what decides whether a timing can be
trusted (the settings pyperf's `system show` checks): the CPU frequency governor, turbo,
the SMT siblings of the CPUs used, the isolated CPUs, ASLR, the load average and the
other busy processes at start. :func:`system_warnings` names the settings known to add
noise; runs.csv carries them as `system_warnings`.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

SYS_CPU = "sys/devices/system/cpu"
# A process busier than this share of one CPU over the sampling window is noted.
BUSY_SHARE = 0.10
BUSY_WINDOW_S = 0.2


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def gpus() -> list[dict[str, Any]]:
    """GPU model, driver and memory through NVML; empty when NVML or a GPU is absent."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # NVML raises its own error types when no driver is present
        return []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            found.append(
                {
                    "index": i,
                    "name": _text(pynvml.nvmlDeviceGetName(handle)),
                    "uuid": _safe(lambda h=handle: _text(pynvml.nvmlDeviceGetUUID(h))),
                    "driver": _text(driver),
                    "memory_bytes": int(memory.total),
                    "sm_clock_max_mhz": _safe(
                        lambda h=handle: pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_SM)
                    ),
                }
            )
        return found
    finally:
        pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None


def package_versions(names: list[str]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _read(root: Path, relative: str) -> str | None:
    try:
        return (root / relative).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def parse_cpu_list(text: str | None) -> list[int]:
    """A kernel CPU list ('0-3,8,10-11') as numbers; empty for None or ''."""
    cpus: list[int] = []
    for part in (text or "").replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def turbo(root: Path) -> bool | None:
    """Whether turbo/boost is on: intel_pstate's no_turbo (1 = off) or cpufreq's boost
    (1 = on); None where neither file exists."""
    no_turbo = _read(root, f"{SYS_CPU}/intel_pstate/no_turbo")
    if no_turbo in ("0", "1"):
        return no_turbo == "0"
    boost = _read(root, f"{SYS_CPU}/cpufreq/boost")
    return boost == "1" if boost in ("0", "1") else None


def process_cpu_ticks(proc: Path) -> dict[int, tuple[str, int]]:
    """Every process's name and CPU time so far (utime + stime, in clock ticks)."""
    found = {}
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        found[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))
    return found


def busy_processes(
    before: dict[int, tuple[str, int]],
    after: dict[int, tuple[str, int]],
    seconds: float,
    ticks_per_s: float,
    exclude: set[int],
    top: int = 5,
) -> list[dict[str, Any]]:
    """The processes that used at least BUSY_SHARE of a CPU between two snapshots of
    :func:`process_cpu_ticks`, busiest first (at most ``top``)."""
    busy = []
    for pid, (name, ticks) in after.items():
        if pid in exclude or pid not in before or before[pid][0] != name:
            continue
        share = (ticks - before[pid][1]) / ticks_per_s / seconds
        if share >= BUSY_SHARE:
            busy.append({"pid": pid, "name": name, "cpu_share": round(share, 3)})
    return sorted(busy, key=lambda p: -p["cpu_share"])[:top]


def system_state(
    cpus: list[int], root: Path = Path("/"), window_s: float = BUSY_WINDOW_S
) -> dict[str, Any]:
    """The settings that decide whether a timing on ``cpus`` can be trusted; a value is
    None where the machine does not expose it (no cpufreq in a VM, not Linux)."""
    governors = {cpu: _read(root, f"{SYS_CPU}/cpu{cpu}/cpufreq/scaling_governor") for cpu in cpus}
    siblings = {
        cpu: parse_cpu_list(_read(root, f"{SYS_CPU}/cpu{cpu}/topology/thread_siblings_list"))
        for cpu in cpus
    }
    aslr = _read(root, "proc/sys/kernel/randomize_va_space")
    loadavg = (_read(root, "proc/loadavg") or "").split()[:3]
    proc = root / "proc"
    before = process_cpu_ticks(proc)
    time.sleep(window_s if before else 0)
    after = process_cpu_ticks(proc)
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return {
        "cpus": list(cpus),
        "governor": {str(c): g for c, g in governors.items() if g is not None} or None,
        "turbo": turbo(root),
        "smt_active": {"1": True, "0": False}.get(_read(root, f"{SYS_CPU}/smt/active") or ""),
        "smt_siblings": {str(c): s for c, s in siblings.items() if s} or None,
        "isolated_cpus": parse_cpu_list(_read(root, f"{SYS_CPU}/isolated")),
        "aslr": int(aslr) if aslr and aslr.isdigit() else None,
        "loadavg": [float(v) for v in loadavg] if len(loadavg) == 3 else None,
        "busy_processes": busy_processes(before, after, window_s, ticks, {os.getpid()}),
    }


def system_warnings(state: dict[str, Any], logical_cpus: int | None) -> list[str]:
    """The recorded settings known to add noise to a timing (pyperf's checks)."""
    warnings = []
    slow = sorted({g for g in (state.get("governor") or {}).values() if g != "performance"})
    if slow:
        warnings.append(f"CPU governor {'/'.join(slow)}, not performance")
    if state.get("turbo"):
        warnings.append("turbo boost on: the clock depends on temperature and load")
    used = set(state.get("cpus") or [])
    siblings = {s for cpus in (state.get("smt_siblings") or {}).values() for s in cpus}
    shared = sorted(siblings - used - set(state.get("isolated_cpus") or []))
    if shared:
        warnings.append(f"SMT siblings {shared} of the CPUs used are free for other work")
    if state.get("aslr") == 0:
        warnings.append("ASLR off: every process gets the same memory layout")
    # More runnable work than CPUs over the last minute (the 1-minute average still holds
    # the previous timing process of a round, so only an oversubscribed machine counts).
    load = state.get("loadavg")
    if load and logical_cpus and load[0] > logical_cpus:
        warnings.append(f"load average {load[0]:g} on {logical_cpus} CPUs")
    busy = state.get("busy_processes") or []
    if busy:
        shown = ", ".join(f"{p['name']} ({100 * p['cpu_share']:.0f} %)" for p in busy[:3])
        warnings.append(f"busy at start: {shown}")
    return warnings


def system_fingerprint(threads: int, extra_packages: list[str] | None = None) -> dict[str, Any]:
    packages = ["numpy", *(extra_packages or [])]
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    state = system_state(cpus)
    return {
        "hostname": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "slurm_partition": os.environ.get("SLURM_JOB_PARTITION"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "threads_used": threads,
        "memory_bytes": memory_bytes(),
        "gpus": gpus(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "packages": package_versions(packages),
        "system_state": state,
        "system_warnings": system_warnings(state, os.cpu_count()),
    }
