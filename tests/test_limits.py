"""The machine's limits (issue 30): the measurements (real GEMMs, real memory copies), the
roofline bound of every timing point, the limit that explains a ranking, and the limits
job on the tiny study."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from reproscope.errors import InputError
from reproscope.report.flops import onnx_flops, theoretical_peak
from reproscope.report.ranking import system_ranking
from reproscope.report.roofline import (
    ABOVE,
    LIMITS_COLUMNS,
    NO_LIMIT,
    WITHIN,
    add_roofline,
    bound,
    explain_rankings,
    limits_row,
    limits_table,
    predicted_h2d_ms,
    traffic,
)
from reproscope.runtime import limits
from tests import tinystudy
from tests.test_disturbance import burner
from tests.test_ranking import rounds_of
from tests.test_workflow import snakemake

K, N = 64, 10


def write_linear(path: Path) -> None:
    """y = x @ W + b for x of shape (batch, K), W (K, N) and b (N), float32."""
    w = numpy_helper.from_array(np.ones((K, N), np.float32), "W")
    b = numpy_helper.from_array(np.zeros(N, np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", N])],
        [w, b],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def flops_json(tmp_path: Path, model: str = "linear") -> Path:
    onnx_path = tmp_path / "linear.onnx"
    write_linear(onnx_path)
    counted = onnx_flops(onnx_path, batch_size=1)
    counted["model"] = model
    out = tmp_path / "flops.json"
    out.write_text(json.dumps(counted))
    return out


def test_intensity_from_a_tiny_onnx_graph(tmp_path: Path) -> None:
    """Weights are read once per batch; every activation is read or written by a node."""
    path = tmp_path / "linear4.onnx"
    write_linear(path)
    counted = onnx_flops(path, batch_size=4)
    assert counted["flops"] == 4 * (2 * K * N + N)
    assert counted["weight_bytes"] == 4 * (K * N + N)
    # MatMul reads x (4 x K) and writes xw (4 x N); Add reads xw and writes y.
    assert counted["activation_bytes"] == 4 * 4 * (K + N + N + N)
    assert counted["input_bytes"] == 4 * 4 * K and counted["uncounted_tensors"] == 0
    per_model = traffic([str(flops_json(tmp_path))])["linear"]
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({"model": "old", "flops": 1, "batch_size": 1}))
    with pytest.raises(InputError, match="activation_bytes.*forcerun count_flops"):
        traffic([str(stale)])
    assert per_model["activation_bytes_per_image"] == 4 * (K + 3 * N)
    # The intensity grows with the batch: the weights are shared by its images.
    runs = pd.DataFrame(
        [{"model": "linear", "system": "s", "device": "cpu", "batch_size": bs} for bs in (1, 64)]
    )
    rows = add_roofline(runs, pd.DataFrame(columns=LIMITS_COLUMNS), [str(tmp_path / "flops.json")])
    ai = rows["arithmetic_intensity"].tolist()
    assert ai[0] == pytest.approx((2 * K * N + N) / (4 * (K * N + N) + 4 * (K + 3 * N)))
    assert ai[1] == pytest.approx(64 * (2 * K * N + N) / (4 * (K * N + N) + 64 * 4 * (K + 3 * N)))
    assert (rows["roofline_status"] == NO_LIMIT).all() and rows["roofline_share"].isna().all()
    # On CUDA, a batch's predicted H2D time at the measured bandwidth goes beside it.
    cuda = add_roofline(
        runs.assign(device="cuda"),
        pd.DataFrame([limit("s", "cuda", gemm_gflops=1e4, device_memory_gbps=1e3,
                            h2d_pageable_gbps=2.0)]),
        [str(tmp_path / "flops.json")],
    )  # fmt: skip
    assert cuda["predicted_h2d_ms"].tolist() == pytest.approx(
        [bs * 4 * K / 2e9 * 1e3 for bs in (1, 64)]
    )


def limit(system: str, device: str = "cpu", **values: float | str | None) -> dict:
    return {**dict.fromkeys(LIMITS_COLUMNS), "system": system, "device": device, **values}


def test_a_point_above_its_bound_has_no_share(tmp_path: Path) -> None:
    flops = str(flops_json(tmp_path))
    per_image = traffic([flops])["linear"]
    ai = per_image["flops_per_image"] / (
        per_image["weight_bytes"] + per_image["activation_bytes_per_image"]
    )
    # memory roof at this intensity: ai * 10 GB/s; compute roof far above it
    memory_bound = ai * 10.0
    runs = pd.DataFrame(
        [
            {
                "model": "linear",
                "system": "s",
                "device": "cpu",
                "batch_size": 1,
                "achieved_gflops": g,
            }
            for g in (0.5 * memory_bound, 2.0 * memory_bound)
        ]
    )
    table = pd.DataFrame([limit("s", gemm_gflops=1000.0, memory_bandwidth_gbps=10.0)])
    rows = add_roofline(runs, table, [flops])
    assert (rows["bound_by"] == "memory").all()
    assert rows["bound_gflops"].tolist() == pytest.approx([memory_bound] * 2)
    below, above = rows.iloc[0], rows.iloc[1]
    assert below["roofline_share"] == pytest.approx(0.5) and below["roofline_status"] == WITHIN
    assert np.isnan(above["roofline_share"])
    assert above["roofline_status"].startswith(ABOVE)
    assert f"{2 * memory_bound:.2f}" in above["roofline_status"]
    assert f"{memory_bound:.2f}" in above["roofline_status"]
    assert not (rows["roofline_share"] > 1).any()
    # Compute-bound where the intensity is high.
    assert bound(1e6, 1000.0, 10.0) == (1000.0, "compute")


def test_the_interconnect_explains_a_ranking_that_compute_gets_wrong() -> None:
    """Volta-like: faster compute, slower interconnect; Pascal-like: the reverse."""
    runs = pd.DataFrame(
        rounds_of("volta", "cuda", 8, compute=4.0, h2d=9.0)
        + rounds_of("pascal", "cuda", 8, compute=6.0, h2d=2.0)
    )
    runs["input_bytes_per_image"] = 3 * 224 * 224 * 4
    limits_rows = pd.DataFrame(
        [
            limit("volta", "cuda", gemm_gflops=14000.0, h2d_pageable_gbps=3.0),
            limit("pascal", "cuda", gemm_gflops=9000.0, h2d_pageable_gbps=12.0),
        ]
    )
    table = explain_rankings(system_ranking(runs), runs, limits_rows)
    row = table.iloc[0]
    assert bool(row["rankings_disagree"])
    assert row["limit_explaining"] == "interconnect"
    assert "volta/cuda/tf computes faster" in row["explanation"]
    assert "H2D pageable: 3 on volta/cuda/tf, 12 GB/s on pascal/cuda/tf" in row["explanation"]
    batch = 8 * 3 * 224 * 224 * 4
    side = {row["system_a"]: "a", row["system_b"]: "b"}
    assert row[f"predicted_h2d_ms_{side['volta']}"] == pytest.approx(batch / 3e9 * 1e3)
    assert row[f"predicted_h2d_ms_{side['pascal']}"] == pytest.approx(batch / 12e9 * 1e3)
    # The other way round (slower compute, faster interconnect wins): no disagreement.
    agree = pd.DataFrame(
        rounds_of("volta", "cuda", 8, compute=4.0, h2d=2.0)
        + rounds_of("pascal", "cuda", 8, compute=6.0, h2d=9.0)
    )
    row = explain_rankings(system_ranking(agree), agree, limits_rows).iloc[0]
    assert not bool(row["rankings_disagree"]) and row["limit_explaining"] is None


def test_predicted_h2d_uses_the_bandwidth_measured_nearest_the_batch() -> None:
    row = pd.Series(
        limit(
            "s",
            "cuda",
            h2d_pageable_gbps=10.0,
            interconnect_by_batch=json.dumps(
                {"1000": {"h2d_pageable_gbps": 1.0}, "1000000": {"h2d_pageable_gbps": 10.0}}
            ),
        )
    )
    assert predicted_h2d_ms(1200, row) == pytest.approx(1200 / 1e9 * 1e3)
    assert predicted_h2d_ms(900_000, row) == pytest.approx(900_000 / 10e9 * 1e3)
    assert predicted_h2d_ms(1000, pd.Series(limit("s", "cpu"))) is None


def test_gemm_sweep_measures_and_skips_what_the_budget_cannot_hold() -> None:
    """Real torch.mm at 1 thread: the small sizes run; a size predicted to cost more than
    the budget left is recorded as skipped, not measured."""
    pytest.importorskip("torch")
    rows = limits.measure_gemms(["pytorch"], "cpu", 1, [64, 128, 4096], repeats=2, budget_s=1.0)
    by_n = {r["n"]: r for r in rows}
    assert by_n[64]["status"] == by_n[128]["status"] == "ok"
    assert by_n[128]["gflops"] > 0 and by_n[128]["spread"] >= 0
    assert "torch.mm" in by_n[128]["method"] and by_n[128]["threads"] == 1
    assert by_n[4096]["status"] == "skipped" and "budget" in by_n[4096]["reason"]
    assert limits.predicted_seconds(None, 512, 3) == 0.0
    assert limits.predicted_seconds({"n": 512, "seconds_per_product": 0.01}, 1024, 3) == (
        pytest.approx(0.08 + 3 * 0.08)
    )
    # This machine's PyTorch is the CPU build: on CUDA the framework says why, no crash.
    cuda = limits.measure_gemms(["pytorch"], "cuda", 1, [64], 2, 1.0)
    assert cuda[0]["status"] == "unavailable" and "cuda" in cuda[0]["reason"]


def test_memory_and_transfer_bandwidths_from_real_copies() -> None:
    """Stream copy and triad over real arrays in 2 threads; the transfer accounting with a
    real host copy standing for the device (the PyTorch copy needs a GPU)."""
    memory = limits.stream_bandwidth(2, 16 * 2**20, repeats=2)
    assert memory["copy_gbps"] > 0 and memory["triad_gbps"] > 0
    assert memory["bandwidth_gbps"] == max(memory["copy_gbps"], memory["triad_gbps"])
    assert "2 thread(s)" in memory["method"]
    assert limits.array_bytes(32 * 2**20) == 128 * 2**20
    assert limits.array_bytes(None) == limits.FALLBACK_ARRAY_BYTES

    def host_copy(direction: str, pinned: bool, nbytes: int):
        a, b = np.ones(nbytes, np.uint8), np.zeros(nbytes, np.uint8)
        return lambda: np.copyto(b, a)

    rows = limits.transfer_bandwidths(host_copy, [2**16, 2**20], repeats=2)
    assert len(rows) == 2 * len(limits.TRANSFERS)
    assert all(r["gbps"] > 0 for r in rows)
    assert limits.best_transfer(rows, "h2d", True) == max(
        r["gbps"] for r in rows if r["direction"] == "h2d" and r["pinned"]
    )


def test_cache_size_and_theoretical_peak_say_why_when_unknown(tmp_path: Path) -> None:
    for i, (level, size) in enumerate([(1, "32K"), (2, "512K"), (3, "32768K")]):
        (tmp_path / "cache" / f"index{i}").mkdir(parents=True)
        (tmp_path / "cache" / f"index{i}" / "size").write_text(size + "\n")
        (tmp_path / "cache" / f"index{i}" / "level").write_text(f"{level}\n")
    assert limits.last_level_cache_bytes(str(tmp_path / "cache")) == 32 * 2**20
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu avx2 fma\n\n")
    peak, why = theoretical_peak(
        cores=2, cpuinfo=str(cpuinfo), max_freq_file=str(tmp_path / "no"), lscpu="true"
    )
    assert peak is None and "states no maximum clock" in why
    peak, how = theoretical_peak(cores=2, freq_ghz=2.0, cpuinfo=str(cpuinfo), lscpu=None)
    assert peak == 2 * 2.0 * 2 * 8 * 2 and "AVX2+FMA" in how
    record = {
        "system": "s",
        "device": "cpu",
        "threads": 2,
        "repeats": 3,
        "gemm": [
            {"framework": "pytorch", "env": "host", "threads": 2, "n": 2048, "status": "ok",
             "gflops": 300.0, "spread": 0.02},
            {"framework": "onnxruntime", "env": "host", "threads": 2, "n": 1024, "status": "ok",
             "gflops": 250.0, "spread": 0.01},
            {"framework": "tensorflow", "env": "host", "threads": 1, "n": 1024, "status": "ok",
             "gflops": 160.0, "spread": 0.03},
            {"framework": "pytorch", "env": "host", "threads": 1, "n": 4096, "status": "skipped",
             "reason": "budget"},
        ],
        "memory": {"bandwidth_gbps": 20.0, "spread": 0.05, "method": "numpy triad"},
    }  # fmt: skip
    row = limits_row(record, (None, why))
    assert row["gemm_gflops"] == 300.0 and row["gemm_framework"] == "pytorch"
    assert row["gemm_shape"] == "2048x2048x2048"
    assert row["gemm_1thread_gflops"] == 160.0 and row["gemm_1thread_framework"] == "tensorflow"
    assert row["theoretical_peak"].startswith("unknown: the CPU states no maximum clock")
    assert "pytorch@1t:n4096=skipped" in row["gemm_sweep"]
    assert list(limits_table([row]).columns) == LIMITS_COLUMNS
    # A CUDA record: the device's memory and the interconnect, per batch as well.
    transfers = [
        {"bytes": b, "direction": d, "pinned": p, "gbps": g, "spread": 0.01}
        for b in (602112, 4816896)
        for (d, p), g in zip(limits.TRANSFERS, (24.0, 12.0, 25.0, 10.0), strict=True)
    ]
    cuda = {
        "device_memory_gbps": 4000.0,
        "device_memory_method": "torch device-to-device copy",
        "transfers": transfers,
        **{
            f"{d}_{'pinned' if p else 'pageable'}_gbps": limits.best_transfer(transfers, d, p)
            for d, p in limits.TRANSFERS
        },
    }
    gpu = limits_row({**record, "device": "cuda", "cuda": cuda}, (None, "not a CPU figure"))
    assert gpu["device_memory_gbps"] == 4000.0 and gpu["h2d_pageable_gbps"] == 12.0
    assert json.loads(gpu["interconnect_by_batch"])["602112"]["d2h_pinned_gbps"] == 25.0
    assert "CUDA: torch device-to-device copy" in gpu["method"]


def test_limits_job_on_the_tiny_study(tmp_path: Path) -> None:
    """The real rule: one limits job (host environment, PyTorch and ONNX Runtime at the
    system's one thread), then limits.csv; editing the system re-plans it."""
    pytest.importorskip("onnxruntime")
    tinystudy.build(tmp_path)
    result = snakemake(tmp_path, "results/summary/limits.csv")
    assert result.returncode == 0, result.stderr[-4000:]
    table = pd.read_csv(tmp_path / "results" / "summary" / "limits.csv")
    assert len(table) == 1
    row = table.iloc[0]
    assert row["threads"] == 1 and row["gemm_gflops"] > 0
    assert row["gemm_framework"] in ("pytorch", "onnxruntime")
    assert row["gemm_gflops"] == row["gemm_1thread_gflops"]
    assert row["memory_bandwidth_gbps"] > 0
    assert isinstance(row["theoretical_peak"], str)
    assert row["seconds"] < 60
    assert snakemake(tmp_path, "-n", "results/summary/limits.csv").stdout.count("rule limits:") == 0
    config = tmp_path / "config.yaml"
    config.write_text(config.read_text().replace("threads: 1", "threads: 2"))
    again = snakemake(tmp_path, "-n", "results/summary/limits.csv")
    assert "rule limits:" in again.stdout, again.stdout[-2000:]


def test_figure1_plans_limits_per_system_and_device_cuda_included() -> None:
    """Figure 1's two systems: the CPU at the system's threads and 1; with a GPU, the CUDA
    environments at the system's threads, the interconnect at the study's batch sizes,
    measured once, in the PyTorch environment."""
    import yaml

    from reproscope.plan import targets
    from reproscope.plan.study import load_study

    config = yaml.safe_load((tinystudy.REPO / "config" / "figure1.yaml").read_text())
    assert config["study"]["repeats"] >= 3
    study = load_study(config, "config/figure1.yaml", gpu_present=True)
    assert targets.limits_points(study) == [
        ("node-1thread", "cpu"),
        ("node-2threads", "cpu"),
        ("node-2threads", "cuda"),
    ]
    cpu = targets.limits_plan(study, "node-2threads", "cpu")
    assert cpu["threads"] == [2, 1] and cpu["transfer_bytes"] == []
    assert cpu["envs"] == {"host": ["onnxruntime", "pytorch", "tensorflow"]}
    jobs = limits.system_jobs(cpu)
    assert [(j["threads"], j["memory_threads"]) for j in jobs] == [(2, 2), (1, 0)]
    assert sum(j["budget_s"] for j in jobs) == pytest.approx(limits.GEMM_BUDGET_S)
    cuda = targets.limits_plan(study, "node-2threads", "cuda")
    assert cuda["threads"] == [2]
    assert set(cuda["envs"]) == {"torch-2.13-cuda", "onnxruntime-gpu-1.30", "tensorflow-2.21-cuda"}
    image = 3 * 224 * 224 * 4
    assert cuda["transfer_bytes"] == [bs * image for bs in config["study"]["batch_sizes"]]
    jobs = limits.system_jobs(cuda)
    assert [j["env"] for j in jobs if j["cuda_limits"]] == ["torch-2.13-cuda"]


def test_a_peak_measured_beside_a_burner_is_measured_again_and_named(monkeypatch) -> None:
    """A GEMM size timed while a burner spins on one of the job's CPUs is disturbed: it is
    measured again (every attempt, since the burner stays), keeps the reasons, and
    limits.csv names the disturbed peak instead of passing a low bound on silently."""
    pytest.importorskip("torch")
    monkeypatch.setattr(limits, "QUIET_WAIT_S", 0.5)
    monkeypatch.setattr(limits, "REMEASURE_BUDGET_S", 2.0)
    cpus = sorted(os.sched_getaffinity(0))
    with burner(cpus[0]):
        rows = limits.measure_gemms(["pytorch"], "cpu", len(cpus), [256], 3, budget_s=5.0)
    (row,) = rows
    assert row["status"] == "ok" and row["attempts"] == 1 + limits.REMEASURE
    assert "other processes used" in row["disturbed"], row
    gemm = [{**row, "env": "host"}]
    record = {"system": "s", "device": "cpu", "threads": len(cpus), "repeats": 3, "gemm": gemm}
    named = limits_row(record, (None, "unknown"))["gemm_disturbed"]
    assert named.startswith(f"pytorch@{len(cpus)}t n=256: other processes used"), named
    quiet = {**record, "gemm": [{**gemm[0], "disturbed": None}]}
    assert limits_row(quiet, (None, "unknown"))["gemm_disturbed"] is None
