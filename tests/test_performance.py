"""Scenarios (FixedBatch and LoadGen's), rounds, comparisons, breakdown and operation counts
on the tiny study (real runs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reproscope.report.compare import OUTCOMES

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def runs(performance_study: Path) -> pd.DataFrame:
    root = performance_study  # tests/conftest.py: the study with every scenario, 2 rounds
    for plot in ("latency_breakdown.png", "latency_throughput.png"):
        assert (root / "results" / "plots" / plot).stat().st_size > 1000
    summary = root / "results" / "summary"
    pytest.repeats = pd.read_csv(summary / "repeats.csv")
    pytest.comparisons = pd.read_csv(summary / "comparisons.csv")
    pytest.root = root
    return pd.read_csv(summary / "runs.csv")


def test_every_scenario_and_repeat_is_a_row(runs: pd.DataFrame) -> None:
    assert (runs["status"] == "ok").all()
    per_manifest = runs.groupby("manifest")
    for _, group in per_manifest:
        counts = group.groupby("scenario").size().to_dict()
        # x 2 rounds
        assert counts == {
            "FixedBatch": 4,
            "SingleStream": 2,
            "MultiStream": 2,
            "Server": 2,
            "Offline": 2,
        }
    assert set(runs["repeat"]) == {0, 1}


def test_statistics_and_stopping_rule(runs: pd.DataFrame) -> None:
    fixed = runs[runs["scenario"] == "FixedBatch"]
    assert (fixed["n_iterations"] >= 5).all()
    assert fixed["stopped_by"].isin(["median_ci", "max_duration"]).all()
    assert (fixed["latency_median_ci95_low_ms"] <= fixed["latency_ms_p50"]).all()
    assert fixed["unstable"].isin([True, False]).all()
    assert fixed["latency_cv"].notna().all()
    assert fixed["noisy"].isin([True, False]).all()
    assert runs["cpu_set"].astype(str).str.len().gt(0).all()
    # The memory policy (study.huge_pages, default true) is recorded with every point.
    assert runs["huge_pages"].eq(True).all()
    assert runs["thp_mode"].isin(["always", "madvise", "never"]).all()


def test_percentiles_only_where_estimable(runs: pd.DataFrame) -> None:
    for row in runs[runs["scenario"] != "Offline"].itertuples():  # Offline: one query,
        for pct, needed in ((90, 29), (99, 299)):  # its percentiles from its samples
            value = getattr(row, f"latency_ms_p{pct}")
            if row.n_iterations >= needed:
                assert float(value) >= row.latency_ms_p50
            elif isinstance(value, str):
                assert value.startswith(f"not estimable, needs {needed} queries")


def test_loadgen_results_logs_and_settings(runs: pd.DataFrame) -> None:
    mlperf = runs[runs["scenario"] != "FixedBatch"]
    assert mlperf["loadgen_validity"].isin(["VALID", "INVALID"]).all()
    invalid = mlperf[mlperf["loadgen_validity"] == "INVALID"]
    assert invalid["loadgen_invalid_reason"].notna().all()
    assert mlperf["loadgen_settings"].str.contains('"min_duration": 200').all()  # user.conf
    # the short profile's durations, LoadGen's demoted log thread and the unnamed
    # benchmark are deviations from MLPerf's rules, named in every row
    for deviation in ("min_duration_ms=200 (mlperf.conf: ", "SCHED_IDLE", "no mlperf_benchmark"):
        assert mlperf["deviations"].str.contains(deviation, regex=False).all()
    assert (mlperf["performance_sample_count"] == mlperf["performance_sample_count"].max()).all()
    single = mlperf[mlperf["scenario"] == "SingleStream"]
    assert single["early_stopping_p90_ms"].notna().all()
    offline = mlperf[mlperf["scenario"] == "Offline"]
    assert (offline["samples_per_query"] >= offline["batch_size"]).all()
    summaries = list((pytest.root / "results" / "timing").rglob("mlperf_log_summary.txt"))
    details = list((pytest.root / "results" / "timing").rglob("mlperf_log_detail.txt"))
    assert len(summaries) == len(details) >= len(mlperf)


def test_server_figure_is_a_confirmed_completed_rate(runs: pd.DataFrame) -> None:
    """The Server figure is LoadGen's completed samples/s of a VALID confirmation run at
    (or stepped down from) the highest VALID rate the search found, never a search bound;
    the rate asked for has its own column."""
    server = runs[runs["scenario"] == "Server"]
    confirmed = server[server["server_max_qps"] > 0]
    assert len(confirmed) >= len(server) / 2
    for row in confirmed.itertuples():
        low, high = map(float, row.server_bracket_qps.split())
        assert low < high and row.server_target_qps <= low * 1.001  # bracket: 4 digits
        assert row.server_max_qps == pytest.approx(row.throughput_ips)
        assert row.server_max_qps != row.server_target_qps
    assert (confirmed["loadgen_validity"] == "VALID").all()
    # on a loaded machine a tiny model's peak may not hold: the row says so, with no figure
    unconfirmed = server[server["server_max_qps"].isna()]
    for reason in unconfirmed["server_search_reason"]:
        assert "no confirmation run" in reason
    assert server["sut"].str.contains("dynamic batching").all()


def test_comparisons_cover_every_pair(runs: pd.DataFrame) -> None:
    comparisons = pytest.comparisons
    assert set(comparisons["kind"]) == {"framework"}  # tiny-pytorch vs tiny-onnx
    assert set(comparisons["scenario"]) == set(runs["scenario"])
    assert (comparisons["rounds"] == 2).all()
    assert (comparisons["ci95_low"] <= comparisons["ratio_b_over_a"]).all()
    assert (comparisons["ratio_b_over_a"] <= comparisons["ci95_high"]).all()
    assert comparisons["verdict"].isin(OUTCOMES).all()
    assert comparisons["p_value"].between(0.0, 1.0).all()
    assert (comparisons["p_value_holm"] >= comparisons["p_value"]).all()


def test_breakdown_on_cpu_has_zero_copies(runs: pd.DataFrame) -> None:
    measured = (runs["scenario"] == "FixedBatch") & (runs["repeat"] == 0)
    fixed = runs[measured]
    assert len(fixed) > 0
    assert (fixed["breakdown_h2d_ms"] == 0).all() and (fixed["breakdown_d2h_ms"] == 0).all()
    assert (fixed["breakdown_compute_ms"] > 0).all()
    assert (fixed["breakdown_preprocess_ms"] > 0).all()
    assert (fixed["breakdown_postprocess_ms"] >= 0).all()
    # measured once per configuration: not in later rounds, nor at LoadGen's points
    assert runs.loc[~measured, "breakdown_compute_ms"].isna().all()


def test_threads_and_operation_counts_are_recorded(runs: pd.DataFrame) -> None:
    assert (runs["intra_op_threads"] == 1).all() and (runs["inter_op_threads"] == 1).all()
    # TinyColourNet: mean over 32x32x3 then a 3->6 linear layer, counted from the ONNX graph.
    assert (runs["flops_per_image"] > 0).all()
    for scenario in ("FixedBatch", "Offline"):
        rows = runs[runs["scenario"] == scenario]
        assert (rows["achieved_gflops"] > 0).all()
        assert (rows["peak_gflops"] > 0).all() and rows["peak_method"].str.contains("GEMM").all()
        # the roofline of the measured limits (limits.csv): a share, never above 1
        assert rows["roofline_share"].between(0, 1, inclusive="right").all()
        assert (rows["roofline_status"] == "within measured limit").all()


def test_repeats_table(runs: pd.DataFrame) -> None:
    repeats = pytest.repeats
    assert (repeats["repeats"] == 2).all()
    assert (repeats["latency_ms_p50_min"] <= repeats["latency_ms_p50_median"]).all()
    assert (repeats["latency_spread_pct"] >= 0).all()


def test_cpu_breakdown_paths_without_a_gpu() -> None:
    """The CUDA stage arithmetic is the same function; check it on synthetic stamps."""
    from reproscope.runtime.runners.base import stage_ms

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
