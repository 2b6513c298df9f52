"""Scenarios, repeats, breakdown and operation counts on the tiny study (real runs)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests import tinystudy
from tests.test_workflow import snakemake

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("performance")
    tinystudy.build(
        root,
        batch_sizes=(1, 2),
        scenarios=["Offline", "SingleStream", "Server"],
        server={"latency_bound_ms": 50.0, "low_qps": 5.0, "high_qps": 400.0, "iterations": 3},
        repeats=2,
        timing={"warmup": 1, "min_duration_s": 0.2, "min_queries": 5, "max_duration_s": 10},
    )
    result = snakemake(root)
    assert result.returncode == 0, result.stderr[-4000:]
    for plot in ("latency_breakdown.png", "latency_throughput.png"):
        assert (root / "results" / "plots" / plot).stat().st_size > 1000
    pytest.repeats = pd.read_csv(root / "results" / "summary" / "repeats.csv")
    return pd.read_csv(root / "results" / "summary" / "runs.csv")


def test_every_scenario_and_repeat_is_a_row(runs: pd.DataFrame) -> None:
    assert (runs["status"] == "ok").all()
    per_manifest = runs.groupby("manifest")
    for _, group in per_manifest:
        counts = group.groupby("scenario").size().to_dict()
        assert counts == {"Offline": 4, "SingleStream": 2, "Server": 2}  # x 2 repeats
    assert set(runs["repeat"]) == {0, 1}


def test_statistics_and_stopping_rule(runs: pd.DataFrame) -> None:
    timed = runs[runs["scenario"] != "Server"]
    assert (timed["n_iterations"] >= 5).all()
    assert (runs["latency_ms_p50"] <= runs["latency_ms_p90"]).all()
    assert (runs["latency_ms_p90"] <= runs["latency_ms_p99"]).all()
    assert (runs["latency_median_ci95_low_ms"] <= runs["latency_ms_p50"]).all()
    assert runs["unstable"].isin([True, False]).all()
    assert runs["latency_cv"].notna().all()


def test_server_scenario_finds_a_rate(runs: pd.DataFrame) -> None:
    server = runs[runs["scenario"] == "Server"]
    assert (server["server_max_qps"] >= 5.0).all()
    assert (server["latency_bound_ms"] == 50.0).all()


def test_breakdown_on_cpu_has_zero_copies(runs: pd.DataFrame) -> None:
    offline = runs[runs["scenario"] == "Offline"]
    assert (offline["breakdown_h2d_ms"] == 0).all() and (offline["breakdown_d2h_ms"] == 0).all()
    assert (offline["breakdown_compute_ms"] > 0).all()
    assert (offline["breakdown_preprocess_ms"] > 0).all()
    assert (offline["breakdown_postprocess_ms"] >= 0).all()


def test_threads_and_operation_counts_are_recorded(runs: pd.DataFrame) -> None:
    assert (runs["intra_op_threads"] == 1).all() and (runs["inter_op_threads"] == 1).all()
    # TinyColourNet: mean over 32x32x3 then a 3->6 linear layer, counted from the ONNX graph.
    assert (runs["flops_per_image"] > 0).all()
    assert (runs.query("scenario == 'Offline'")["achieved_gflops"] > 0).all()


def test_repeats_table(runs: pd.DataFrame) -> None:
    repeats = pytest.repeats
    assert (repeats["repeats"] == 2).all()
    assert (repeats["latency_ms_p50_min"] <= repeats["latency_ms_p50_median"]).all()
    assert (repeats["latency_spread_pct"] >= 0).all()


def test_cpu_breakdown_paths_without_a_gpu() -> None:
    """The CUDA stage arithmetic is the same function; check it on synthetic stamps."""
    from reproscope.runners.base import stage_ms

    assert stage_ms(0, 1_000_000, 4_000_000, 4_500_000, "cuda") == {
        "h2d_ms": 1.0,
        "compute_ms": 3.0,
        "d2h_ms": 0.5,
    }
    assert stage_ms(0, 1_000_000, 4_000_000, 4_500_000, "cpu") == {
        "h2d_ms": 0.0,
        "compute_ms": 4.5,
        "d2h_ms": 0.0,
    }
