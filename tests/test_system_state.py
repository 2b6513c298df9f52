"""System state per timing process (governor, turbo, SMT, isolation, ASLR, load, busy
processes) and its warnings; pinning away from CPU 0; the GPU CUDA selects and its
energy from NVML's total-energy counter. Pure functions, on files laid out as /sys and
/proc lay them out, and the real machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproscope.runtime.fingerprint import (
    busy_processes,
    parse_cpu_list,
    process_cpu_ticks,
    system_fingerprint,
    system_state,
    system_warnings,
    turbo,
)
from reproscope.runtime.resources import (
    COUNTER,
    SAMPLED,
    GpuSampler,
    counter_energy_j,
    visible_gpu,
)
from tests.test_resources import FakeNVML


def write(root: Path, relative: str, text: str) -> None:
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_text(text)


def stat_line(pid: int, name: str, ticks: int) -> str:
    # pid (comm) state ppid ... utime (field 14) stime (15) ...
    fields = ["S", "1"] + ["0"] * 9 + [str(ticks), "0"] + ["0"] * 30
    return f"{pid} ({name}) " + " ".join(fields) + "\n"


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    """A 4-CPU machine with SMT (0/2 and 1/3 share cores), powersave, turbo on, CPU 2
    isolated, ASLR off."""
    cpu = "sys/devices/system/cpu"
    for n, siblings in enumerate(["0,2", "1,3", "0,2", "1,3"]):
        write(tmp_path, f"{cpu}/cpu{n}/cpufreq/scaling_governor", "powersave\n")
        write(tmp_path, f"{cpu}/cpu{n}/topology/thread_siblings_list", siblings + "\n")
    write(tmp_path, f"{cpu}/intel_pstate/no_turbo", "0\n")
    write(tmp_path, f"{cpu}/smt/active", "1\n")
    write(tmp_path, f"{cpu}/isolated", "2\n")
    write(tmp_path, "proc/sys/kernel/randomize_va_space", "0\n")
    write(tmp_path, "proc/loadavg", "5.50 2.00 1.00 2/300 4242\n")
    write(tmp_path, "proc/4242/stat", stat_line(4242, "make (cc1)", 100))
    return tmp_path


def test_cpu_lists() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("") == [] and parse_cpu_list(None) == []


def test_turbo_from_either_driver(tmp_path: Path) -> None:
    assert turbo(tmp_path) is None
    write(tmp_path, "sys/devices/system/cpu/cpufreq/boost", "1\n")
    assert turbo(tmp_path) is True
    write(tmp_path, "sys/devices/system/cpu/intel_pstate/no_turbo", "1\n")
    assert turbo(tmp_path) is False  # intel_pstate decides where it is the driver


def test_state_and_warnings_of_a_noisy_machine(machine: Path) -> None:
    state = system_state([1], root=machine, window_s=0.01)
    assert state["governor"] == {"1": "powersave"}
    assert state["turbo"] is True and state["smt_active"] is True
    assert state["smt_siblings"] == {"1": [1, 3]}
    assert state["isolated_cpus"] == [2] and state["aslr"] == 0
    assert state["loadavg"] == [5.5, 2.0, 1.0]
    assert state["busy_processes"] == []  # its CPU time did not move in the window
    warnings = system_warnings(state, logical_cpus=4)
    assert warnings == [
        "CPU governor powersave, not performance",
        "turbo boost on: the clock depends on temperature and load",
        "SMT siblings [3] of the CPUs used are free for other work",
        "ASLR off: every process gets the same memory layout",
        "load average 5.5 on 4 CPUs",
    ]


def test_a_quiet_machine_has_no_warnings() -> None:
    state = {
        "cpus": [2, 3],
        "governor": {"2": "performance", "3": "performance"},
        "turbo": False,
        "smt_siblings": {"2": [2, 3], "3": [2, 3]},
        "aslr": 2,
        "loadavg": [0.2, 0.1, 0.1],
        "busy_processes": [],
    }
    assert system_warnings(state, logical_cpus=4) == []
    # a free sibling that is isolated takes no other work; a load up to the CPU count is
    # the previous timing process's
    state |= {"cpus": [2], "isolated_cpus": [3], "loadavg": [4.0, 1.0, 1.0]}
    assert system_warnings(state, logical_cpus=4) == []
    assert system_warnings({}, None) == []  # nothing exposed (a VM, not Linux)


def test_busy_processes_from_two_snapshots(machine: Path) -> None:
    before = process_cpu_ticks(machine / "proc")
    assert before == {4242: ("make (cc1)", 100)}  # a name with a space and parentheses
    after = {4242: ("make (cc1)", 150), 7: ("new", 500), 8: ("idle", 0), 9: ("me", 900)}
    before |= {8: ("idle", 0), 9: ("me", 0)}
    busy = busy_processes(before, after, seconds=1.0, ticks_per_s=100, exclude={9})
    assert busy == [{"pid": 4242, "name": "make (cc1)", "cpu_share": 0.5}]
    assert "busy at start: make (cc1) (50 %)" in system_warnings({"busy_processes": busy}, 4)


def test_real_machine_state_and_the_fingerprint() -> None:
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        fingerprint = system_fingerprint(1)
    finally:
        burner.kill()
        burner.wait()
    state = fingerprint["system_state"]
    assert state["cpus"] == sorted(os.sched_getaffinity(0))
    assert state["aslr"] == int(Path("/proc/sys/kernel/randomize_va_space").read_text())
    assert len(state["loadavg"]) == 3
    assert burner.pid in {p["pid"] for p in state["busy_processes"]}
    assert any(w.startswith("busy at start:") for w in fingerprint["system_warnings"])


PIN = "from reproscope.runtime.noise import pin_cpus; import os; print(pin_cpus({}))"


@pytest.mark.parametrize(
    ("allowed", "threads", "pinned"), [([0, 1], 1, [1]), ([0], 1, [0]), ([0, 1], 2, [0, 1])]
)
def test_pinning_keeps_off_cpu_0_when_there_is_a_choice(
    allowed: list[int], threads: int, pinned: list[int]
) -> None:
    if not set(allowed) <= os.sched_getaffinity(0):
        pytest.fail(f"this machine lacks CPUs {allowed}")
    code = f"import os; os.sched_setaffinity(0, {allowed}); " + PIN.format(threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(pinned)


# ---- GPUs

UUIDS = ["GPU-aaaa1111-0000", "GPU-bbbb2222-0000", "GPU-cccc3333-0000"]


def test_the_gpu_cuda_calls_device_0() -> None:
    assert visible_gpu(None, UUIDS)[0] == 0
    assert visible_gpu(None, [])[0] is None
    assert visible_gpu("GPU-cccc3333-0000,GPU-aaaa1111-0000", UUIDS) == (2, f"UUID {UUIDS[2]}")
    assert visible_gpu("GPU-bbbb", UUIDS)[0] == 1  # a unique prefix, as CUDA accepts
    assert visible_gpu("GPU-", UUIDS)[0] is None  # ambiguous
    assert visible_gpu("GPU-dddd", UUIDS)[0] is None
    assert visible_gpu("1,0", UUIDS)[0] == 1
    assert visible_gpu("5", UUIDS)[0] is None
    assert visible_gpu("", UUIDS)[0] is None and visible_gpu("-1", UUIDS)[0] is None
    assert visible_gpu("MIG-0d1c", UUIDS)[0] is None


def test_counter_energy() -> None:
    assert counter_energy_j(1_000_000, 1_250_500) == 250.5
    assert counter_energy_j(None, 5) is None and counter_energy_j(5, None) is None
    assert counter_energy_j(10, 5) is None  # the driver reloaded


class CounterNVML(FakeNVML):
    """Three GPUs with UUIDs and a total-energy counter that gains 300 W worth (mJ)."""

    def __init__(self) -> None:
        super().__init__(count=3)
        self.started = time.perf_counter()

    def nvmlDeviceGetUUID(self, handle: tuple[str, int]) -> str:
        return UUIDS[handle[1]]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: tuple[str, int]) -> int:
        return 5_000_000 + int(300_000 * (time.perf_counter() - self.started))


def test_sampler_takes_the_counter_and_the_visible_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-cccc3333-0000")
    with GpuSampler(interval_s=0.01, nvml=CounterNVML()) as gpu:
        time.sleep(0.2)
    summary = gpu.summary()
    assert summary["index"] == 2 and summary["selected_by"] == f"UUID {UUIDS[2]}"
    assert summary["energy_method"] == COUNTER
    assert summary["energy_j"] == pytest.approx(300 * summary["duration_s"], rel=0.2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-ffff")
    with GpuSampler(nvml=CounterNVML()) as missing:
        pass
    assert missing.summary() == {"available": False, "reason": missing.reason}
    assert "GPU-ffff" in missing.reason


def test_sampler_without_a_counter_integrates_power(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with GpuSampler(interval_s=0.01, nvml=FakeNVML(power_w=lambda t: 100.0)) as gpu:
        time.sleep(0.1)
    summary = gpu.summary()
    assert summary["energy_method"] == SAMPLED and summary["index"] == 0
    assert summary["energy_j"] == pytest.approx(100 * summary["duration_s"], rel=0.1)


def test_runs_csv_carries_the_warnings(tmp_path: Path) -> None:
    from reproscope.report.aggregate import runs_table

    job = {"model": "m", "manifest": "m-onnx", "framework": "onnxruntime", "env": "ort"}
    job |= {"device": "cpu", "system": "local", "threads": 1, "batch_size": 1}
    warned = ["turbo boost on: the clock depends on temperature and load", "ASLR off: x"]
    paths = []
    for name, warnings in (("warned", warned), ("quiet", [])):
        record = {"job": job, "status": "ok", "reason": None, "metrics": {"p50_ms": 1.0}}
        record["fingerprint"] = {"system_warnings": warnings}
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(record))
    table = runs_table([str(p) for p in paths])
    cells = table["system_warnings"].fillna("").tolist()
    assert sorted(cells) == ["", "; ".join(warned)]
