"""Resource measurement during a run: GPU memory/utilisation/power sampling and peak RSS.

Env-side: importing this module needs only the standard library and numpy. ``pynvml`` (from
the ``nvidia-ml-py`` package) is imported inside :class:`GpuSampler` when it starts, and only
when no NVML module was injected, so framework environments without it still import this.

:class:`GpuSampler` is a context manager. On entry it initialises NVML, takes one sample, and
starts a daemon thread that samples every ``interval_s`` seconds; on exit it stops and joins
the thread, takes one last sample and shuts NVML down. A machine without NVML, driver or the
requested GPU never raises: the sampler is then *unavailable* and :meth:`GpuSampler.summary`
says why. A metric the device does not support (e.g. power on some boards) is recorded as
``NaN`` and summarised as ``None``, without stopping the other metrics.

Energy comes from NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules since the driver loaded; Volta and later), read when the sampler starts and
stops: exact, and no thread is needed for it. Only where the device has no such counter is
the sampled power integrated instead; ``energy_method`` says which. The GPU is the one the
job's framework calls device 0: the first entry of ``CUDA_VISIBLE_DEVICES``, matched to
NVML by UUID (``GPU-...``, a unique prefix as CUDA accepts) or taken as an index
(:func:`visible_gpu`).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from types import TracebackType
from typing import Any

import numpy as np

__all__ = [
    "GpuSampler",
    "counter_energy_j",
    "peak_rss_bytes",
    "trapezoid_energy_j",
    "visible_gpu",
]

COUNTER, SAMPLED = "nvml_total_energy", "sampled_power"


def visible_gpu(cuda_visible_devices: str | None, uuids: list[str]) -> tuple[int | None, str]:
    """``(NVML index, how it was chosen)`` of the GPU a CUDA process sees as device 0,
    from ``CUDA_VISIBLE_DEVICES`` and the UUIDs of NVML's devices in index order; the index
    is None when that GPU cannot be found (no visible device, an unknown UUID, a MIG
    instance). An integer entry is taken as an NVML index: CUDA counts the same way only
    with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (schedulers such as SLURM set UUIDs or that)."""
    if cuda_visible_devices is None:
        return (0, "index 0 (CUDA_VISIBLE_DEVICES unset)") if uuids else (None, "no GPU")
    first = cuda_visible_devices.split(",")[0].strip()
    if first.startswith("GPU-"):
        found = [i for i, uuid in enumerate(uuids) if uuid.startswith(first)]
        if len(found) == 1:
            return found[0], f"UUID {uuids[found[0]]}"
        return None, f"CUDA_VISIBLE_DEVICES names {first!r}: {len(found)} NVML devices match"
    if first.isdigit():
        index = int(first)
        if index < len(uuids):
            return index, f"index {index} (CUDA_VISIBLE_DEVICES={cuda_visible_devices})"
        return None, f"CUDA_VISIBLE_DEVICES names index {index}: {len(uuids)} device(s)"
    return None, f"CUDA_VISIBLE_DEVICES={cuda_visible_devices!r} selects no whole GPU"


def counter_energy_j(start_mj: float | None, end_mj: float | None) -> float | None:
    """Joules between two readings of NVML's total-energy counter (millijoules); None when
    either is missing or the counter went backwards (the driver reloaded)."""
    if start_mj is None or end_mj is None or end_mj < start_mj:
        return None
    return (end_mj - start_mj) / 1000.0


def trapezoid_energy_j(times_s: Any, power_w: Any) -> float:
    """Trapezoidal integral of power (W) over time (s), in joules.

    Pairs of samples where either power value is not finite are skipped, so a device that
    intermittently fails to report power loses only those intervals. Fewer than two samples
    give ``0.0``.
    """
    t = np.asarray(times_s, dtype=float)
    p = np.asarray(power_w, dtype=float)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"times and power must be 1-D of equal length, got {t.shape}, {p.shape}")
    if t.size < 2:
        return 0.0
    mid = (p[1:] + p[:-1]) / 2.0
    dt = np.diff(t)
    ok = np.isfinite(mid) & np.isfinite(dt)
    return float(np.sum(mid[ok] * dt[ok]))


def peak_rss_bytes(children: bool = False) -> int:
    """Peak resident set size of this process (or of its waited-for children), in bytes.

    ``ru_maxrss`` is in KiB on Linux and in bytes on macOS. Returns ``0`` where the
    :mod:`resource` module does not exist (Windows).
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    maxrss = int(resource.getrusage(who).ru_maxrss)
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _nanmax(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else None


class GpuSampler:
    """Sample one GPU's memory used, utilisation and power in a background thread.

    Usage::

        with GpuSampler(index=0) as gpu:
            run_inference()
        gpu.summary()                      # dict, see :meth:`summary`
        gpu.energy_per_inference_j(1000)   # joules per inference, or None

    ``nvml`` is the ``pynvml`` module, injectable for tests; by default ``pynvml`` is imported
    when the sampler starts. Any failure to import it, initialise NVML or find GPU ``index``
    makes the sampler unavailable (``available`` False, ``reason`` set) instead of raising.
    """

    def __init__(
        self, index: int | None = None, interval_s: float = 0.05, nvml: Any | None = None
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        # None: the GPU CUDA_VISIBLE_DEVICES makes device 0, found when the sampler starts
        self.index = None if index is None else int(index)
        self.selected_by = None if index is None else f"index {index} (given)"
        self._energy_mj: list[float | None] = []
        self.interval_s = float(interval_s)
        self._nvml = nvml
        self._handle: Any = None
        self._initialised = False
        self.available = False
        self.reason: str | None = "sampler not started"
        self.memory_total_bytes: int | None = None
        self._times: list[float] = []
        self._memory: list[float] = []
        self._util: list[float] = []
        self._power: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> GpuSampler:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> GpuSampler:
        """Initialise NVML, take a first sample and start the sampling thread."""
        if self._started:
            raise RuntimeError("GpuSampler can only be started once")
        self._started = True
        if not self._open():
            return self
        self.available = True
        self.reason = None
        self._sample()
        self._thread = threading.Thread(
            target=self._loop, name=f"reproscope-gpu-sampler-{self.index}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop and join the sampling thread, take a last sample, shut NVML down."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(timeout_s, 2 * self.interval_s))
        if self.available and not self.running and self._handle is not None:
            self._sample()
            self._read_energy()
        self._close()

    def _open(self) -> bool:
        nvml = self._nvml
        if nvml is None:
            try:
                import pynvml as nvml  # lazy: optional in framework envs
            except Exception as e:  # ImportError, or a broken install
                self.reason = f"pynvml not importable: {type(e).__name__}: {e}"
                return False
            self._nvml = nvml
        try:
            nvml.nvmlInit()
        except Exception as e:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
            self.reason = f"NVML init failed: {type(e).__name__}: {e}"
            return False
        self._initialised = True
        try:
            count = int(nvml.nvmlDeviceGetCount())
            if self.index is None:
                self.index, self.selected_by = self._visible(nvml, count)
                if self.index is None:
                    self.reason = self.selected_by
                    self._close()
                    return False
            if not 0 <= self.index < count:
                self.reason = f"GPU index {self.index} not present ({count} device(s) found)"
                self._close()
                return False
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
        except Exception as e:
            self.reason = f"NVML device {self.index} not usable: {type(e).__name__}: {e}"
            self._close()
            return False
        self._read_energy()
        return True

    @staticmethod
    def _visible(nvml: Any, count: int) -> tuple[int | None, str]:
        selected = os.environ.get("CUDA_VISIBLE_DEVICES")
        uuids = []
        if selected is not None and selected.strip().startswith("GPU-"):
            for i in range(count):
                uuid = nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))
                uuids.append(uuid.decode() if isinstance(uuid, bytes) else str(uuid))
        else:
            uuids = [""] * count
        return visible_gpu(selected, uuids)

    def _read_energy(self) -> None:
        try:
            value = float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # no counter before Volta, or not supported on this board
            value = None
        self._energy_mj.append(value)

    def _close(self) -> None:
        if self._initialised:
            self._initialised = False
            self._handle = None
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass

    # -- sampling ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        nvml, handle = self._nvml, self._handle
        memory = util = power = math.nan
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(handle)
            memory = float(info.used)
            if self.memory_total_bytes is None:
                self.memory_total_bytes = int(info.total)
        except Exception:
            pass
        try:
            util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:
            pass
        try:
            power = float(nvml.nvmlDeviceGetPowerUsage(handle)) / 1000.0  # mW -> W
        except Exception:
            pass
        now = time.perf_counter()
        with self._lock:
            self._times.append(now)
            self._memory.append(memory)
            self._util.append(util)
            self._power.append(power)

    # -- results -----------------------------------------------------------------------------

    def samples(self) -> dict[str, np.ndarray]:
        """Copies of the raw samples: ``time_s`` (perf_counter), ``memory_used_bytes``,
        ``utilisation_pct`` and ``power_w`` (NaN where a query failed)."""
        with self._lock:
            return {
                "time_s": np.array(self._times, dtype=float),
                "memory_used_bytes": np.array(self._memory, dtype=float),
                "utilisation_pct": np.array(self._util, dtype=float),
                "power_w": np.array(self._power, dtype=float),
            }

    def summary(self) -> dict[str, Any]:
        """Summary of the samples so far.

        Unavailable: ``{"available": False, "reason": ...}``. Otherwise ``available``,
        ``index``, ``interval_s``, ``n_samples``, ``duration_s`` (first to last sample),
        ``memory_used_max_bytes``, ``memory_total_bytes``, ``utilisation_mean_pct``,
        ``power_mean_w`` (mean of the samples), ``power_max_w``, ``energy_j`` and
        ``energy_method``: the total-energy counter's difference between start and stop
        (``nvml_total_energy``) or, without that counter, the trapezoidal integral of the
        sampled power (``sampled_power``); and ``selected_by``, how the GPU was chosen. A
        metric never read is ``None``.
        """
        if not self.available:
            return {"available": False, "reason": self.reason}
        s = self.samples()
        t, power = s["time_s"], s["power_w"]
        mem_max = _nanmax(s["memory_used_bytes"])
        has_power = bool(np.isfinite(power).any())
        return {
            "available": True,
            "index": self.index,
            "interval_s": self.interval_s,
            "n_samples": int(t.size),
            "duration_s": float(t[-1] - t[0]) if t.size >= 2 else 0.0,
            "memory_used_max_bytes": None if mem_max is None else int(mem_max),
            "memory_total_bytes": self.memory_total_bytes,
            "utilisation_mean_pct": _nanmean(s["utilisation_pct"]),
            "power_mean_w": _nanmean(power),
            "power_max_w": _nanmax(power),
            **self._energy(t, power, has_power),
            "selected_by": self.selected_by,
        }

    def _energy(self, t: np.ndarray, power: np.ndarray, has_power: bool) -> dict[str, Any]:
        readings = self._energy_mj
        counted = counter_energy_j(readings[0], readings[-1]) if len(readings) == 2 else None
        if counted is not None:
            return {"energy_j": counted, "energy_method": COUNTER}
        if has_power:
            return {"energy_j": trapezoid_energy_j(t, power), "energy_method": SAMPLED}
        return {"energy_j": None, "energy_method": None}

    def energy_per_inference_j(self, n_inferences: int) -> float | None:
        """Energy of the sampled window divided by ``n_inferences``; ``None`` without data."""
        if n_inferences <= 0:
            raise ValueError(f"n_inferences must be > 0, got {n_inferences!r}")
        energy = self.summary().get("energy_j")
        return None if energy is None else float(energy) / n_inferences
