"""GpuSampler with a fake NVML module, the real pynvml failure path, and peak RSS."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from reproscope.runtime.resources import GpuSampler, peak_rss_bytes, trapezoid_energy_j


class FakeNVMLError(Exception):
    pass


class FakeNVML:
    """Minimal stand-in for the pynvml module: one or more devices, power from a function."""

    NVMLError = FakeNVMLError

    def __init__(self, power_w=lambda t: 100.0, memory_used=lambda n: 1000, count=1, util=50):
        self.power_w = power_w
        self.memory_used = memory_used
        self.count = count
        self.util = util
        self.n_mem_calls = 0
        self.init_calls = 0
        self.shutdown_calls = 0

    def nvmlInit(self):
        self.init_calls += 1

    def nvmlShutdown(self):
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index):
        if not 0 <= index < self.count:
            raise FakeNVMLError("Invalid Argument")
        return ("handle", index)

    def nvmlDeviceGetMemoryInfo(self, handle):
        self.n_mem_calls += 1
        return SimpleNamespace(used=self.memory_used(self.n_mem_calls), total=8 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(gpu=self.util, memory=10)

    def nvmlDeviceGetPowerUsage(self, handle):
        return int(round(self.power_w(time.perf_counter()) * 1000))  # mW


class FailingInitNVML(FakeNVML):
    def nvmlInit(self):
        raise FakeNVMLError("Driver Not Loaded")


class NoPowerNVML(FakeNVML):
    def nvmlDeviceGetPowerUsage(self, handle):
        raise FakeNVMLError("Not Supported")


def _assert_stopped(sampler: GpuSampler) -> None:
    thread = sampler._thread
    assert thread is not None
    thread.join(timeout=1.0)
    assert not thread.is_alive()
    assert not sampler.running


def test_trapezoid_energy_known_values():
    assert trapezoid_energy_j([0.0, 1.0, 2.0], [0.0, 10.0, 20.0]) == pytest.approx(20.0)
    assert trapezoid_energy_j([0.0, 0.5, 2.0], [100.0, 100.0, 100.0]) == pytest.approx(200.0)
    assert trapezoid_energy_j([1.0], [5.0]) == 0.0
    assert trapezoid_energy_j([], []) == 0.0
    # an interval touching a NaN power sample is skipped
    assert trapezoid_energy_j([0, 1, 2, 3], [10, math.nan, 10, 10]) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        trapezoid_energy_j([0, 1], [1, 2, 3])


def test_constant_power_energy():
    nvml = FakeNVML(power_w=lambda t: 100.0)
    with GpuSampler(index=0, interval_s=0.01, nvml=nvml) as gpu:
        time.sleep(0.3)
    _assert_stopped(gpu)
    s = gpu.summary()
    assert s["available"] is True
    assert s["n_samples"] >= 5
    assert s["duration_s"] == pytest.approx(0.3, rel=0.5)
    assert s["energy_j"] == pytest.approx(100.0 * s["duration_s"], rel=0.10)
    assert s["power_mean_w"] == pytest.approx(100.0)
    assert s["power_max_w"] == pytest.approx(100.0)
    assert s["utilisation_mean_pct"] == pytest.approx(50.0)
    assert s["memory_total_bytes"] == 8 * 2**30
    assert gpu.energy_per_inference_j(10) == pytest.approx(s["energy_j"] / 10)
    with pytest.raises(ValueError):
        gpu.energy_per_inference_j(0)
    assert nvml.init_calls == 1 and nvml.shutdown_calls == 1


def test_ramping_power_is_trapezoid():
    t0 = time.perf_counter()
    nvml = FakeNVML(power_w=lambda t: 50.0 + 500.0 * (t - t0))  # +500 W/s
    with GpuSampler(interval_s=0.02, nvml=nvml) as gpu:
        time.sleep(0.2)
    _assert_stopped(gpu)
    s = gpu.summary()
    raw = gpu.samples()
    t, p = raw["time_s"], raw["power_w"]
    assert np.all(np.diff(t) > 0)
    assert np.all(np.diff(p) >= 0)  # ramp
    expected = float(np.sum((p[1:] + p[:-1]) / 2 * np.diff(t)))
    assert s["energy_j"] == pytest.approx(expected, rel=1e-9)
    # power is linear in time, so the trapezoid is (nearly) the exact integral
    a, b = t[0] - t0, t[-1] - t0
    exact = 50.0 * (b - a) + 250.0 * (b**2 - a**2)
    assert s["energy_j"] == pytest.approx(exact, rel=0.01)
    assert s["power_max_w"] == pytest.approx(p.max())
    assert s["power_max_w"] > s["power_mean_w"] > p[0]


def test_memory_max():
    nvml = FakeNVML(memory_used=lambda n: 2_000_000 if n == 3 else 1_000 * n % 7_000)
    with GpuSampler(interval_s=0.005, nvml=nvml) as gpu:
        time.sleep(0.05)
    s = gpu.summary()
    mem = gpu.samples()["memory_used_bytes"]
    assert mem.size == s["n_samples"] >= 3
    assert s["memory_used_max_bytes"] == 2_000_000
    assert isinstance(s["memory_used_max_bytes"], int)


def test_unsupported_power_keeps_other_metrics():
    with GpuSampler(interval_s=0.005, nvml=NoPowerNVML()) as gpu:
        time.sleep(0.03)
    s = gpu.summary()
    assert s["available"] is True
    assert s["power_mean_w"] is None and s["power_max_w"] is None and s["energy_j"] is None
    assert s["memory_used_max_bytes"] == 1000
    assert gpu.energy_per_inference_j(5) is None


def test_failing_init_is_unavailable():
    nvml = FailingInitNVML()
    with GpuSampler(nvml=nvml) as gpu:
        time.sleep(0.01)
    assert gpu.available is False
    assert gpu._thread is None and not gpu.running
    s = gpu.summary()
    assert s == {"available": False, "reason": s["reason"]}
    assert "Driver Not Loaded" in s["reason"]
    assert gpu.energy_per_inference_j(3) is None
    assert nvml.shutdown_calls == 0  # never initialised


def test_missing_device_index_is_unavailable():
    nvml = FakeNVML(count=1)
    with GpuSampler(index=2, nvml=nvml) as gpu:
        pass
    assert gpu.available is False
    assert "index 2" in gpu.summary()["reason"]
    assert nvml.shutdown_calls == 1  # init succeeded, so it is paired


def test_not_started_and_single_use():
    gpu = GpuSampler(nvml=FakeNVML())
    assert gpu.summary() == {"available": False, "reason": "sampler not started"}
    with gpu:
        pass
    with pytest.raises(RuntimeError):
        gpu.start()
    with pytest.raises(ValueError):
        GpuSampler(interval_s=0)


def test_real_pynvml_never_raises():
    pytest.importorskip("pynvml")
    with GpuSampler(interval_s=0.01) as gpu:  # real pynvml: no GPU here -> unavailable
        time.sleep(0.03)
    s = gpu.summary()
    if gpu.available:  # a machine with a GPU and driver
        _assert_stopped(gpu)
        assert s["n_samples"] >= 2
    else:
        assert set(s) == {"available", "reason"}
        assert isinstance(s["reason"], str) and s["reason"]
        assert not gpu.running


def test_peak_rss_bytes():
    rss = peak_rss_bytes()
    assert isinstance(rss, int)
    assert rss > 10 * 2**20  # a Python process with numpy holds more than 10 MiB
    assert peak_rss_bytes(children=True) >= 0
