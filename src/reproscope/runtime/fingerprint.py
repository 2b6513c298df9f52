"""System fingerprint of the machine a job runs on. Standard library only (env-side)."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from typing import Any


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


def system_fingerprint(threads: int, extra_packages: list[str] | None = None) -> dict[str, Any]:
    packages = ["numpy", *(extra_packages or [])]
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
    }
